"""Training loop for SNN/ANN twins: SGD + cosine schedule, optional TET loss, a checkpoint
after every epoch, exact resume; one process or many under torchrun.

Determinism: each epoch reseeds its data order and the global RNG from (seed, epoch, rank),
so an interrupted run resumed from its last checkpoint ends with the same weights as an
uninterrupted run with the same seed on the same device and number of processes. On CUDA
that needs `deterministic=True` (deterministic kernels, no cuDNN autotuning).

Under torchrun (suite.distributed) the model is wrapped in DistributedDataParallel. The batch
size is global: each of W processes takes batch_size / W samples of every step, and a
DistributedSampler deals each shuffled epoch out so that global batch k holds the same samples
as batch k of a single process (samples i with i % W == rank of the epoch's permutation).
Gradients are averaged over processes, epoch metrics summed over them; rank 0 alone prints,
writes checkpoints and logs to TensorBoard. A resumed run reads its checkpoint on rank 0 and
sends it to the others, so the output folder need not be shared between nodes.

CUDA: mixed precision (bfloat16 autocast where the GPU has it, else float16 with a gradient
scaler; `amp=False` switches it off), channels_last memory format, pinned-memory loaders and
non-blocking copies. On CPU training runs in float32 and the default memory format.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from suite import distributed
from suite.checkpoint import load_checkpoint, save_checkpoint
from suite.data import load_dataset
from suite.device import CUBLAS_DETERMINISTIC_WORKSPACE, seed_everything
from suite.errors import SuiteError
from suite.files import check_target
from suite.models import TwinNet, build_model, mean_logits
from suite.models.firing import FiringRates
from suite.progress import progress_bar
from suite.results.provenance import provenance
from suite.train.settings import Optimisation, TrainConfig
from suite.train_log import TrainLog


# Evaluation keeps no activations for backward, so it runs in batches of at least this many
# samples, whatever the training batch: fewer, larger forward passes at little memory cost.
EVAL_BATCH_MIN = 256
# Epoch e of a run with seed s draws its data order from seed s * EPOCH_SEED_STRIDE + e: a
# stride above any epoch count, so no two (seed, epoch) pairs share a stream. Process r of a
# torchrun seeds its augmentation RNG RANK_SEED_STRIDE * r further on (rank 0: as one process).
EPOCH_SEED_STRIDE = 100_003
RANK_SEED_STRIDE = 1_000_003


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: list[dict[str, float]]
    seconds: float

    @property
    def test_accuracy(self) -> float:
        return self.metrics[-1]["test_acc"]


def loss_fn(out: torch.Tensor, y: torch.Tensor, model: TwinNet, tet: bool) -> torch.Tensor:
    """Cross-entropy on time-averaged logits, or TET: the mean over t of CE(logits_t, y)."""
    if tet and model.kind == "snn":
        T = out.shape[0]
        return F.cross_entropy(out.flatten(0, 1), y.repeat(T))
    return F.cross_entropy(mean_logits(out, model), y)


# ----------------------------------------------------------------------------- device settings

def amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype of a training step: bfloat16 on CUDA GPUs that have it, float16 on
    older ones (with a gradient scaler), None (float32) on CPU or with `amp=False`."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (tensor-core convolutions want NHWC), the default elsewhere (on
    CPU, PyTorch 2.14's channels_last backward of a strided 1x1 convolution corrupts memory)."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on `device`: non-blocking (the loaders pin memory on CUDA), images channels_last."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=memory_format(device)) if x.dim() == 4 else x


@contextmanager
def deterministic_algorithms(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels for the block (`torch.use_deterministic_algorithms`, cuBLAS's
    fixed workspace, no cuDNN autotuning); otherwise cuDNN autotunes on CUDA. Restores the
    previous settings on exit."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC_WORKSPACE)
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not enabled
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


# ----------------------------------------------------------------------------- data

def train_loader(dataset: Dataset, cfg: Optimisation, rank: int, world: int,
                 pin_memory: bool = False) -> DataLoader:
    """This process's loader over the shuffled training set, batch_size / world per step.

    The sampler's permutation depends on (seed, epoch) only (`seed_epoch`), and rank r takes
    its positions r, r + W, ...; so global batch k is the same set of samples for any number
    of processes W that divides the batch. A tail of fewer than W samples is dropped, then the
    last, partial batch (unless the split is smaller than one batch).
    """
    if cfg.batch_size % world:
        raise SuiteError(f"--batch-size {cfg.batch_size} is the global batch and must split evenly over "
                         f"{world} processes")
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                 seed=cfg.seed * EPOCH_SEED_STRIDE, drop_last=True)
    return DataLoader(dataset, batch_size=cfg.batch_size // world, sampler=sampler, num_workers=cfg.workers,
                      generator=torch.Generator(), pin_memory=pin_memory,
                      drop_last=len(dataset) > cfg.batch_size)


def seed_epoch(loader: DataLoader, seed: int, epoch: int, rank: int = 0) -> None:
    """Seed an epoch from (seed, epoch) alone, so a resumed run draws what the uninterrupted
    run drew: the data order (seed * EPOCH_SEED_STRIDE + epoch, the same on every process), and
    this process's augmentation RNG and loader worker seeds (one further, plus its rank's stride)."""
    loader.sampler.set_epoch(epoch)
    own = seed * EPOCH_SEED_STRIDE + epoch + 1 + rank * RANK_SEED_STRIDE
    loader.generator.manual_seed(own)
    torch.manual_seed(own)


def evaluation_loader(dataset: Dataset, cfg: Optimisation, pin_memory: bool = False) -> DataLoader:
    """This process's contiguous share of the test set (every sample once over all processes)."""
    share = distributed.shard(range(len(dataset)))
    return DataLoader(Subset(dataset, share), batch_size=max(cfg.batch_size, EVAL_BATCH_MIN),
                      num_workers=cfg.workers, pin_memory=pin_memory)


@torch.no_grad()
def evaluate(model: TwinNet, loader: DataLoader, device: torch.device,
             autocast_dtype: torch.dtype | None = None) -> float:
    """Top-1 accuracy of the time-averaged logits, over every process's share of the data."""
    model.eval()
    counts = torch.zeros(2, dtype=torch.float64, device=device)  # correct, total
    for x, y, *_ in loader:
        x, y = to_device(x, device), y.to(device, non_blocking=True)
        with autocast(device, autocast_dtype):
            pred = mean_logits(model(x), model).argmax(1)
        counts[0] += (pred == y).sum()
        counts[1] += y.numel()
    correct, total = distributed.all_reduce_sum(counts).tolist()
    return correct / max(total, 1)


# ----------------------------------------------------------------------------- one step

def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to `dtype` on `device`; nothing when `dtype` is None."""
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else nullcontext()


def train_step(net: nn.Module, model: TwinNet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               tet: bool, autocast_dtype: torch.dtype | None = None,
               scaler: torch.amp.GradScaler | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step of `net` (the model, or its DDP wrapper) on a batch already on the
    device; returns the loss and the number of correct predictions, as tensors (no sync)."""
    with autocast(x.device, autocast_dtype):
        out = net(x)
        loss = loss_fn(out, y, model, tet)
    opt.zero_grad(set_to_none=True)
    if scaler is not None:  # float16: scale the loss so small gradients do not flush to zero
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    correct = (mean_logits(out.detach(), model).argmax(1) == y).sum()
    return loss.detach(), correct


@dataclass
class _Run:
    """One process's training run: the model (and its DDP wrapper `net`), optimiser, schedule,
    gradient scaler and autocast dtype, and where it saves."""

    config: TrainConfig
    checkpoint: Path
    device: torch.device
    model: TwinNet
    net: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None

    @classmethod
    def build(cls, config: TrainConfig, checkpoint: Path, device: torch.device) -> "_Run":
        """The model on `device` in its memory format (BatchNorm synchronised over the processes
        with --sync-bn: same module names and state dict), SGD with momentum and weight decay,
        and a cosine schedule over all epochs."""
        optim, world = config.optim, distributed.world_size()
        model = build_model(config.model_config)
        if optim.sync_bn and world > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(device, memory_format=memory_format(device))
        opt = torch.optim.SGD(model.parameters(), lr=optim.lr, momentum=optim.momentum,
                              weight_decay=optim.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=optim.epochs)
        dtype = amp_dtype(device, optim.amp)
        scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
            if world > 1 else model
        return cls(config, checkpoint, device, model, net, opt, sched, dtype, scaler)

    def start(self, resume: bool) -> tuple[int, list[dict[str, float]]]:
        """The first epoch to run and the metrics so far: (0, []) for a new run, else the
        checkpoint's (read by rank 0, sent to every process), with its state loaded into model,
        optimizer, scheduler and gradient scaler."""
        if not resume:
            return 0, []
        epoch, metrics, state = distributed.broadcast_from_main(lambda: _restore(self.checkpoint, self.config))
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        return epoch, metrics

    def epoch(self, loader: DataLoader, progress: Callable[[str], None], every: int = 10) -> tuple[float, float, int]:
        """One pass over `loader` with a `train_step` per batch; returns (mean loss, accuracy,
        samples) over every process's batches. `progress(text)` after each step; the running loss
        and accuracy are read (which waits for the GPU) every `every` steps, never if 0."""
        self.net.train()
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss sum, correct, seen
        for step, (x, y, *_) in enumerate(loader):
            x, y = to_device(x, self.device), y.to(self.device, non_blocking=True)
            loss, correct = train_step(self.net, self.model, self.opt, x, y, self.config.optim.tet, self.dtype,
                                       self.scaler)
            totals[0] += loss * y.numel()
            totals[1] += correct
            totals[2] += y.numel()
            text = ""
            if every and step % every == 0:
                loss_sum, right, seen = totals.tolist()
                text = f"loss {loss_sum / seen:.3f} acc {right / seen:.3f}"
            progress(text)
        loss_sum, right, seen = distributed.all_reduce_sum(totals).tolist()
        return loss_sum / seen, right / seen, int(seen)

    def save(self, epoch: int, metrics: list[dict]) -> None:
        """Rank 0 writes the checkpoint (atomically); a failure stops every process."""
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        c = self.config
        distributed.broadcast_from_main(
            lambda: save_checkpoint(self.checkpoint, c.model_config, c.data, c.optim.to_dict(), epoch, metrics,
                                    state, provenance=provenance(self.device)))


def train(config: TrainConfig, checkpoint: str | Path, *, data_root: str | Path = "datasets",
          device: torch.device | str = "cpu", resume: bool = False, show_progress: bool = True,
          on_epoch_end: Callable[[int, dict], None] | None = None,
          tensorboard: str | Path | None = None) -> TrainResult:
    """Train the model of `config` on its data; write `checkpoint` after every epoch; return
    the metrics.

    With `resume=True` an existing checkpoint is continued from its last finished epoch
    (its configs must match `config`). Under torchrun (the process group joined here if the
    caller has not) every process calls this with the same arguments; `on_epoch_end` runs on
    each. `tensorboard`: a folder for TensorBoard logs (needs the tensorboard package).
    """
    device, checkpoint, optim = torch.device(device), _checkpoint_path(checkpoint), config.optim
    distributed.init(device)
    rank, world = distributed.rank(), distributed.world_size()
    _check_parallel(optim, device, world, tensorboard)
    seed_everything(optim.seed)
    run = _Run.build(config, checkpoint, device)  # first: a model that cannot be built fails before data loads
    start, metrics = run.start(resume)
    train_set, test_loader = _loaders(config, data_root, rank, world, pin_memory=device.type == "cuda")
    log = TrainLog(tensorboard) if tensorboard is not None and distributed.is_main() else None
    rates = FiringRates(run.model) if log is not None else None
    t0 = time.perf_counter()
    with deterministic_algorithms(optim.deterministic, device), \
            progress_bar(show_progress and distributed.is_main()) as bar:
        task = bar.add_task("train", total=(optim.epochs - start) * len(train_set), info="")
        try:
            for epoch in range(start, optim.epochs):
                seed_epoch(train_set, optim.seed, epoch, rank)
                where = f"epoch {epoch + 1}/{optim.epochs}"
                loss, acc, seen = run.epoch(
                    train_set, lambda text: bar.update(task, advance=1, **({"info": f"{where} {text}"} if text else {})),
                    every=0 if bar.disable else 10)
                run.sched.step()
                epoch_rates = rates.take() if rates is not None else {}
                distributed.sync_from_main(list(run.model.buffers()))  # rank 0's BatchNorm statistics everywhere
                row = {"epoch": epoch + 1, "train_loss": loss, "train_acc": acc,
                       "test_acc": evaluate(run.model, test_loader, device, run.dtype),
                       "lr": run.opt.param_groups[0]["lr"], "samples": seen, "processes": world}
                if not math.isfinite(loss):
                    raise SuiteError(f"training diverged at epoch {epoch + 1} (loss is {loss}); lower --lr")
                metrics.append(row)
                bar.update(task, info=f"{where} test acc {row['test_acc']:.3f}")
                run.save(epoch + 1, metrics)
                if log is not None:
                    log.epoch(epoch + 1, row, epoch_rates)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, row)
        finally:
            if log is not None:
                log.close()
                rates.remove()
    return TrainResult(checkpoint=checkpoint, metrics=metrics, seconds=time.perf_counter() - t0)


def _checkpoint_path(checkpoint: str | Path) -> Path:
    """The checkpoint file, refused when it or its folder is in the way."""
    return check_target(checkpoint)


def _check_parallel(optim: Optimisation, device: torch.device, world: int, tensorboard) -> None:
    """Refuse, on every process alike, what cannot run: --sync-bn on CPU processes,
    --tensorboard without the package."""
    if optim.sync_bn and world > 1 and device.type != "cuda":
        raise SuiteError("--sync-bn needs CUDA: torch's SyncBatchNorm synchronises GPU tensors only")
    if tensorboard is not None:
        TrainLog.require()


def _loaders(config: TrainConfig, data_root: str | Path, rank: int, world: int,
             pin_memory: bool) -> tuple[DataLoader, DataLoader]:
    """This process's shuffled, augmented train loader and its share of the test set."""
    train_set = load_dataset(config.data, data_root, "train", augment=True)
    test_set = load_dataset(config.data, data_root, "test")
    return (train_loader(train_set, config.optim, rank, world, pin_memory),
            evaluation_loader(test_set, config.optim, pin_memory))


def _restore(path: Path, config: TrainConfig) -> tuple[int, list[dict], dict]:
    """Epoch, metrics and state dicts of a checkpoint, after checking it is the same run."""
    if not path.exists():
        raise SuiteError(f"--resume given but no checkpoint at {path}")
    ckpt = load_checkpoint(path)
    if ckpt.model_config != config.model_config:
        raise SuiteError(f"{path} was trained with another model config; cannot resume it")
    if ckpt.data_spec != config.data:
        raise SuiteError(f"{path} was trained on {ckpt.data_spec.name} with other data settings; cannot resume it")
    optim = config.optim.to_dict()
    if ckpt.train_config != optim:
        diff = sorted(k for k in optim if ckpt.train_config.get(k) != optim[k])
        raise SuiteError(f"{path} was trained with other settings ({', '.join(diff)}); cannot resume it")
    if ckpt.epoch >= config.optim.epochs:
        raise SuiteError(f"{path} already finished all {config.optim.epochs} epochs; nothing to resume")
    return ckpt.epoch, list(ckpt.metrics), ckpt.state
