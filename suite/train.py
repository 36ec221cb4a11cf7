"""Training loop for SNN/ANN twins: SGD + cosine schedule, optional TET loss, AMP on CUDA,
a checkpoint after every epoch, and exact resume.

Determinism: each epoch reseeds its data order and the global RNG from (seed, epoch), so an
interrupted run resumed from its last checkpoint ends with the same weights as an
uninterrupted run with the same seed on the same device.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from suite.checkpoint import load_checkpoint, save_checkpoint
from suite.config import seed_everything
from suite.data import DataSpec, get_dataset_info, load_dataset, resolve_spec
from suite.errors import SuiteError
from suite.models import ModelConfig, TwinNet, build_model, mean_logits
from suite.progress import progress_bar
from suite.settings import TrainConfig


# Evaluation keeps no activations for backward, so it runs in batches of at least this many
# samples, whatever the training batch: fewer, larger forward passes at little memory cost.
EVAL_BATCH_MIN = 256
# Epoch e of a run with seed s draws its data order from seed s * EPOCH_SEED_STRIDE + e: a
# stride above any epoch count, so no two (seed, epoch) pairs share a stream.
EPOCH_SEED_STRIDE = 100_003


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: list[dict[str, float]]
    seconds: float

    @property
    def test_accuracy(self) -> float:
        return self.metrics[-1]["test_acc"]


def model_config_for(data: DataSpec, arch: str, kind: str, **overrides) -> ModelConfig:
    """A model config that fits dataset `data`: channels, size, classes, normalisation, T."""
    spec = resolve_spec(data)
    info = get_dataset_info(spec.name)
    if info.kind == "event":
        channels = 2
        overrides.setdefault("timesteps", spec.timesteps)
        if kind == "snn" and overrides["timesteps"] != spec.timesteps:
            raise SuiteError(f"{spec.name} frames have T={spec.timesteps} bins; the SNN must use the same T")
    else:
        channels = spec.channels
    mean, std = info.normalisation
    return ModelConfig(arch=arch, kind=kind, num_classes=info.num_classes, in_channels=channels,
                       input_size=spec.size, mean=mean, std=std, **overrides)


def loss_fn(out: torch.Tensor, y: torch.Tensor, model: TwinNet, tet: bool) -> torch.Tensor:
    """Cross-entropy on time-averaged logits, or TET: the mean over t of CE(logits_t, y)."""
    if tet and model.kind == "snn":
        T = out.shape[0]
        return F.cross_entropy(out.flatten(0, 1), y.repeat(T))
    return F.cross_entropy(mean_logits(out, model), y)


@torch.no_grad()
def evaluate(model: TwinNet, loader: DataLoader, device: torch.device) -> float:
    """Top-1 accuracy of the time-averaged logits."""
    model.eval()
    correct = total = 0
    for x, y, *_ in loader:
        x, y = x.to(device), y.to(device)
        pred = mean_logits(model(x), model).argmax(1)
        correct += (pred == y).sum().item()
        total += y.numel()
    return correct / max(total, 1)


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def train(
    model_cfg: ModelConfig,
    data: DataSpec,
    cfg: TrainConfig,
    checkpoint: str | Path,
    data_root: str | Path = "datasets",
    device: torch.device | str = "cpu",
    resume: bool = False,
    show_progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train `model_cfg` on `data`; write `checkpoint` after every epoch; return the metrics.

    With `resume=True` an existing checkpoint is continued from its last finished epoch
    (its configs must match the ones given).
    """
    device = torch.device(device)
    data = resolve_spec(data)
    checkpoint = _checkpoint_path(checkpoint)
    seed_everything(cfg.seed)
    model = build_model(model_cfg).to(device)  # first: a bad model config fails before data loads
    opt, sched = _optimizer(model, cfg)
    start_epoch, metrics = _start(checkpoint, resume, model_cfg, data, cfg, model, opt, sched)
    gen = torch.Generator()
    train_loader, test_loader = _loaders(data, data_root, cfg, gen)
    use_amp = cfg.amp and device.type == "cuda"
    t0 = time.perf_counter()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("train", total=(cfg.epochs - start_epoch) * len(train_loader), info="")
        for epoch in range(start_epoch, cfg.epochs):
            _seed_epoch(gen, cfg.seed, epoch)
            where = f"epoch {epoch + 1}/{cfg.epochs}"
            loss, acc = _train_epoch(model, train_loader, opt, cfg.tet, device, use_amp,
                                     lambda text: bar.update(task, advance=1, info=f"{where} {text}"))
            sched.step()
            row = {"epoch": epoch + 1, "train_loss": loss, "train_acc": acc,
                   "test_acc": evaluate(model, test_loader, device), "lr": opt.param_groups[0]["lr"]}
            if not math.isfinite(loss):
                raise SuiteError(f"training diverged at epoch {epoch + 1} (loss is {loss}); lower --lr")
            metrics.append(row)
            bar.update(task, info=f"{where} test acc {row['test_acc']:.3f}")
            save_checkpoint(checkpoint, model_cfg, data, asdict(cfg), epoch + 1, metrics, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()})
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
    return TrainResult(checkpoint=checkpoint, metrics=metrics, seconds=time.perf_counter() - t0)


def _checkpoint_path(checkpoint: str | Path) -> Path:
    """The checkpoint file, refused when it or its folder is in the way."""
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        raise SuiteError(f"checkpoint path {checkpoint} is a folder")
    if checkpoint.parent.exists() and not checkpoint.parent.is_dir():
        raise SuiteError(f"output folder {checkpoint.parent} exists and is not a folder")
    return checkpoint


def _optimizer(model: TwinNet, cfg: TrainConfig):
    """SGD with momentum and weight decay, and a cosine schedule over all epochs."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)


def _start(checkpoint: Path, resume: bool, model_cfg: ModelConfig, data: DataSpec, cfg: TrainConfig,
           model: TwinNet, opt, sched) -> tuple[int, list[dict[str, float]]]:
    """The first epoch to run and the metrics so far: (0, []) for a new run, else the
    checkpoint's, with its state loaded into model, optimizer and scheduler."""
    if not resume:
        return 0, []
    if not checkpoint.exists():
        raise SuiteError(f"--resume given but no checkpoint at {checkpoint}")
    return _restore(checkpoint, model_cfg, data, cfg, model, opt, sched)


def _loaders(data: DataSpec, data_root: str | Path, cfg: TrainConfig,
             gen: torch.Generator) -> tuple[DataLoader, DataLoader]:
    """The shuffled, augmented train loader (its order drawn from `gen`) and the test loader."""
    train_set = load_dataset(data, data_root, "train", augment=True)
    test_set = load_dataset(data, data_root, "test")
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                              num_workers=cfg.workers, drop_last=len(train_set) > cfg.batch_size)
    test_loader = DataLoader(test_set, batch_size=max(cfg.batch_size, EVAL_BATCH_MIN), num_workers=cfg.workers)
    return train_loader, test_loader


def _seed_epoch(gen: torch.Generator, seed: int, epoch: int) -> None:
    """Seed the data order and the global RNG (augmentation, dropout) from (seed, epoch) alone,
    so a resumed run draws what the uninterrupted run drew."""
    gen.manual_seed(seed * EPOCH_SEED_STRIDE + epoch)
    torch.manual_seed(seed * EPOCH_SEED_STRIDE + epoch + 1)


def _train_epoch(model: TwinNet, loader: DataLoader, opt: torch.optim.Optimizer, tet: bool,
                 device: torch.device, use_amp: bool, progress: Callable[[str], None]) -> tuple[float, float]:
    """One pass over `loader` with an SGD step per batch; returns (mean loss, accuracy)."""
    model.train()
    loss_sum = correct = seen = 0.0
    for x, y, *_ in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, use_amp):
            out = model(x)
            loss = loss_fn(out, y, model, tet)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * y.numel()
        correct += (mean_logits(out.detach(), model).argmax(1) == y).sum().item()
        seen += y.numel()
        progress(f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
    return loss_sum / seen, correct / seen


def _restore(path: Path, model_cfg: ModelConfig, data: DataSpec, cfg: TrainConfig,
             model: TwinNet, opt, sched) -> tuple[int, list[dict]]:
    """Load a checkpoint into model/optimizer/scheduler after checking it is the same run."""
    ckpt = load_checkpoint(path)
    if ckpt.model_config != model_cfg:
        raise SuiteError(f"{path} was trained with another model config; cannot resume it")
    if ckpt.data_spec != data:
        raise SuiteError(f"{path} was trained on {ckpt.data_spec.name} with other data settings; cannot resume it")
    if ckpt.train_config != asdict(cfg):
        diff = sorted(k for k in asdict(cfg) if ckpt.train_config.get(k) != asdict(cfg)[k])
        raise SuiteError(f"{path} was trained with other settings ({', '.join(diff)}); cannot resume it")
    if ckpt.epoch >= cfg.epochs:
        raise SuiteError(f"{path} already finished all {cfg.epochs} epochs; nothing to resume")
    model.load_state_dict(ckpt.state["model"])
    opt.load_state_dict(ckpt.state["optimizer"])
    sched.load_state_dict(ckpt.state["scheduler"])
    return ckpt.epoch, list(ckpt.metrics)
