"""Running attacks over a dataset: batches of the first N samples, predictions, an `AttackStore`.

Samples are the first N of the split (as RobustBench does), so runs with different N nest.
Every (method, eps) attacks the same clean batches; eps 0 is the clean pass (no attack call,
adversarial = clean). How each method is called and seeded: suite.attacks.methods.

Under torchrun each process attacks a contiguous share of whole batches (suite.distributed);
the batch results are gathered in batch order, so the store is the one a single process makes
with the same seed and batch size (each batch's RNG seed is keyed by its first sample), and
every process gets it (rank 0 writes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from suite import distributed
from suite.attacks.config import AttackConfig
from suite.attacks.gradients import attack_model, describe_gradient
from suite.attacks.methods import batch_seed, craft
from suite.errors import SuiteError
from suite.models import mean_logits
from suite.progress import progress_bar
from suite.results.attacks import AttackEntry, AttackStore, format_eps

Run = tuple[str, float]  # (method, eps)


@dataclass
class BatchResult:
    """What one batch of clean samples gave: labels, clean predictions and, per run, the
    adversarial inputs, the target's predictions on them and their L-inf distances."""

    labels: Tensor  # [b] int64
    clean_pred: Tensor  # [b] int64
    clean: Tensor | None  # [b, ...] float32, or None when not kept
    adv: dict[Run, Tensor] = field(default_factory=dict)  # [b, ...]
    pred: dict[Run, Tensor] = field(default_factory=dict)  # [b]
    linf: dict[Run, Tensor] = field(default_factory=dict)  # [b]


def _batch(dataset: Dataset, indices: range) -> tuple[Tensor, Tensor]:
    """Stack samples into x [B, ...] and labels [B]. (A DataLoader would draw from the global
    RNG for its worker seed even unshuffled; this keeps the caller's RNG untouched.)"""
    items = [dataset[i] for i in indices]
    x = torch.stack([torch.as_tensor(item[0], dtype=torch.float32) for item in items])
    return x, torch.tensor([int(item[1]) for item in items], dtype=torch.int64)


@torch.no_grad()
def predict(model: nn.Module, x: Tensor) -> Tensor:
    """Class predictions [B] from the time-averaged logits."""
    return mean_logits(model(x), model).argmax(dim=1)


def _sample_count(dataset: Dataset, config: AttackConfig) -> int:
    n = len(dataset) if config.samples is None else config.samples
    if n > len(dataset):
        raise SuiteError(f"asked for {n} samples but the {config.split} split has {len(dataset)}")
    if n == 0:
        raise SuiteError(f"the {config.split} split is empty: nothing to attack")
    return n


def _attack_batch(model: nn.Module, attacker: nn.Module, x: Tensor, y: Tensor, start: int,
                  runs: list[Run], config: AttackConfig, keep_clean: bool, step) -> BatchResult:
    """Every run on one batch x [b, ...] (on the device), y [b]; results on the CPU.
    `step(run)` is called before each run (progress)."""
    result = BatchResult(labels=y.cpu(), clean_pred=predict(model, x).cpu(), clean=x.cpu() if keep_clean else None)
    for run in runs:
        method, eps = run
        step(run)
        a = craft(attacker, method, x, y, eps, config, batch_seed(config.seed, method, eps, start))
        result.adv[run] = a.cpu()
        result.pred[run] = predict(model, a).cpu()
        result.linf[run] = (a - x).abs().flatten(1).amax(dim=1).cpu()
    return result


def _assemble(batches: list[BatchResult], runs: list[Run], n: int, config: dict[str, Any],
              keep_clean: bool) -> AttackStore:
    """Concatenate the batches (in sample order) into a store."""
    labels = torch.cat([b.labels for b in batches])
    entries = []
    for method, eps in runs:
        pred = torch.cat([b.pred[method, eps] for b in batches])
        entries.append(AttackEntry(method=method, eps=eps, adv=torch.cat([b.adv[method, eps] for b in batches]),
                                   pred=pred, linf=torch.cat([b.linf[method, eps] for b in batches]),
                                   robust_acc=float((pred == labels).double().mean())))
    return AttackStore(indices=torch.arange(n, dtype=torch.int64), labels=labels,
                       clean_pred=torch.cat([b.clean_pred for b in batches]), entries=entries, config=config,
                       clean=torch.cat([b.clean for b in batches]) if keep_clean else None)


def _store_config(model: nn.Module, source: nn.Module | None, config: AttackConfig, n: int,
                  device: torch.device, meta: dict[str, Any] | None) -> dict[str, Any]:
    """The store's JSON config: attack settings, model(s), gradient description, provenance."""
    return {
        "attack": config.to_dict(),
        "model": model.cfg.to_dict() if hasattr(model, "cfg") else None,
        "source_model": source.cfg.to_dict() if source is not None and hasattr(source, "cfg") else None,
        "gradient": describe_gradient(model, config.grad, config.attack_surrogate, source),
        "split": config.split, "n_samples": n, "device": str(device), "processes": distributed.world_size(),
        **(meta or {}),
    }


def run_attacks(model: nn.Module, dataset: Dataset, config: AttackConfig,
                device: str | torch.device = "cpu", source: nn.Module | None = None,
                meta: dict[str, Any] | None = None, keep_clean: bool = True,
                progress: bool = False) -> AttackStore:
    """Attack the first `config.samples` samples of `dataset` with every method and eps.

    `model` is the evaluated target (moved to `device`, run in eval mode, restored after);
    `source` the crafting model for grad="transfer". `meta` (checkpoint path, data spec,
    split, ...) is added to the store's config. Returns the store, not yet written. Under
    torchrun every process calls this alike, attacks its share of the batches and returns
    the whole store.
    """
    device = torch.device(device)
    n = _sample_count(dataset, config)
    distributed.init(device)
    attacker = attack_model(model, config.grad, config.attack_surrogate, source).to(device)
    starts = distributed.shard(range(0, n, config.batch_size))  # whole batches: the same seeds as one process
    runs = [(m, e) for m in config.methods for e in config.eps]
    batches = []
    was_training = model.training
    model.to(device).eval()
    try:
        with progress_bar(progress and distributed.is_main()) as bar:
            task = bar.add_task("attack", total=len(starts) * len(runs), info="")

            def step(run: Run) -> None:  # before each run: show it; count the run before it as done
                bar.update(task, advance=0 if run == runs[0] else 1, info=f"{run[0]} eps={format_eps(run[1])}")

            for start in starts:
                x, y = _batch(dataset, range(start, min(start + config.batch_size, n)))
                batches.append(_attack_batch(model, attacker, x.to(device), y.to(device), start, runs, config,
                                             keep_clean, step))
                bar.advance(task)
    finally:
        model.train(was_training)
    batches = [b for share in distributed.all_gather_objects(batches) for b in share]  # rank order = batch order
    return _assemble(batches, runs, n, _store_config(model, source, config, n, device, meta), keep_clean)


def attack_checkpoint(checkpoint: str, config: AttackConfig, data_root: str = ".",
                      device: str | torch.device = "cpu", source_checkpoint: str | None = None,
                      keep_clean: bool = True, progress: bool = True, dataset: str | None = None) -> AttackStore:
    """Load a checkpoint (and a transfer source), its dataset split (or `dataset`, shaped to
    fit the model), and run the attacks."""
    from suite.checkpoint import load_model
    from suite.data import load_dataset, resolve_spec

    model, ckpt = load_model(checkpoint, device)
    source = load_model(source_checkpoint, device)[0] if source_checkpoint else None
    spec = ckpt.data_spec_for(dataset)
    data = load_dataset(spec, data_root, config.split)
    meta = {"checkpoint": str(checkpoint), "source_checkpoint": str(source_checkpoint) if source_checkpoint else None,
            "data": resolve_spec(spec).to_dict(), "data_root": str(data_root)}
    return run_attacks(model, data, config, device=device, source=source, meta=meta,
                       keep_clean=keep_clean, progress=progress)
