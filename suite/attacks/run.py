"""Running attacks over a dataset: batches of the first N samples, predictions, an `AttackStore`.

Samples are the first N of the split (as RobustBench does), so runs with different N nest: a
batch's examples depend only on the seed, the attack, eps and the batch's first index.
Every (attack, eps) attacks the same clean batches; eps 0 is the clean pass (no attack call,
adversarial = clean). With several attacks the store also gets a worst-case entry per eps
(suite.attacks.worst). How each method is called and seeded: suite.attacks.methods; which
model each attack uses: suite.attacks.plan; saving finished batches: suite.attacks.resume.

Under torchrun each process attacks a contiguous share of whole batches (suite.distributed);
the batch results are gathered in batch order, so the store is the one a single process makes
with the same seed and batch size (each batch's RNG seed is keyed by its first sample), and
every process gets it (rank 0 writes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from suite import distributed
from suite.attacks.gradients import check_source, describe_gradient, is_snn
from suite.attacks.composite import craft_composite, member_budget, member_seed
from suite.attacks.event_run import attack_events, change_dict, change_of, event_source, events_array, events_tensor
from suite.attacks.event_run import recordings as event_recordings
from suite.attacks.methods import METHODS, Budget, batch_seed, budgets, check_classes, craft
from suite.attacks.plan import Attack, Attackers, describe_attack
from suite.attacks.resume import Partial, PartialRun
from suite.attacks.settings import AttackConfig
from suite.attacks.worst import worst_case
from suite.device import select_device
from suite.errors import SuiteError
from suite.models import mean_logits
from suite.models.digest import weights_digest
from suite.progress import progress_bar
from suite.results.attacks import AttackEntry, AttackStore, format_eps
from suite.where import Where

Run = tuple[Attack, float]  # (attack, eps)


@dataclass
class BatchResult:
    """What one batch of clean samples gave: labels, clean predictions and, per run (attack
    name, eps), the adversarial inputs, the target's predictions on them, their L-inf distances
    and, for composite attacks, which component broke each sample."""

    labels: Tensor  # [b] int64
    clean_pred: Tensor  # [b] int64
    clean: Tensor | None  # [b, ...] float32, or None when not kept
    adv: dict[tuple[str, float], Tensor] = field(default_factory=dict)  # [b, ...]
    pred: dict[tuple[str, float], Tensor] = field(default_factory=dict)  # [b]
    linf: dict[tuple[str, float], Tensor] = field(default_factory=dict)  # [b]; events changed (--threat events)
    broken_by: dict[tuple[str, float], list[str]] = field(default_factory=dict)
    recordings: list | None = None  # --threat events: the batch's clean recordings (EVENT_DTYPE arrays)
    sensors: list | None = None  # their sensors (width, height)
    changes: dict[tuple[str, float], list] = field(default_factory=dict)  # --threat events: a Change per sample

    def to_dict(self) -> dict[str, Any]:
        """Plain tensors, lists and strings (what `torch.load(weights_only=True)` reads back)."""
        return {"labels": self.labels, "clean_pred": self.clean_pred, "clean": self.clean,
                "recordings": None if self.recordings is None else [events_tensor(r) for r in self.recordings],
                "sensors": self.sensors,
                "runs": [{"name": k[0], "eps": k[1], "adv": self.adv[k], "pred": self.pred[k],
                          "linf": self.linf[k], "broken_by": self.broken_by.get(k),
                          "changes": [change_dict(c) for c in self.changes[k]] if k in self.changes else None}
                         for k in self.adv]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BatchResult":
        b = cls(labels=d["labels"], clean_pred=d["clean_pred"], clean=d["clean"],
                recordings=None if d.get("recordings") is None else [events_array(r) for r in d["recordings"]],
                sensors=d.get("sensors"))
        for r in d["runs"]:
            key = (r["name"], float(r["eps"]))
            b.adv[key], b.pred[key], b.linf[key] = r["adv"], r["pred"], r["linf"]
            if r["broken_by"] is not None:
                b.broken_by[key] = list(r["broken_by"])
            if r.get("changes") is not None:
                b.changes[key] = [change_of(c) for c in r["changes"]]
        return b


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


def _num_classes(model: nn.Module, dataset: Dataset) -> int:
    """The model's number of classes: its config's, else the width of its logits on one sample."""
    n = getattr(getattr(model, "cfg", None), "num_classes", None)
    if n is None:
        x, _ = _batch(dataset, range(1))
        device = next(model.parameters()).device
        n = mean_logits(model(x.to(device)), model).shape[1]
    return int(n)


def _attack_batch(attackers: Attackers, x: Tensor, y: Tensor, start: int, runs: list[Run],
                  n_classes: int, step: Callable[[Run], None], recs: list | None = None) -> BatchResult:
    """Every run on one batch x [b, ...] (on the device), y [b]; results on the CPU.
    `step(run)` is called before each run (progress). Under --threat events `recs` are the batch's
    clean recordings (suite.attacks.event_run)."""
    model, config = attackers.model, attackers.config
    result = BatchResult(labels=y.cpu(), clean_pred=predict(model, x).cpu(),
                         clean=x.cpu() if config.keep_clean else None)
    if recs is not None:
        result.recordings, result.sensors = [r.events for r in recs], [list(r.sensor) for r in recs]
        attack_events(attackers, recs, y, start, runs, step, result)
        return result
    budget = Budget.of(config)
    for run in runs:
        attack, eps = run
        step(run)
        key = (attack.name, eps)
        if attack.members:
            a, result.broken_by[key] = craft_composite(
                attackers, attack.members, x, y, eps, member_budget(attack.method, budget, config.budget),
                lambda m: member_seed(config.seed, attack.name, m, eps, start), n_classes)
        else:
            a = craft(attackers.for_attack(attack), attack.method, x, y, eps, budget,
                      batch_seed(config.seed, attack.name, eps, start), n_classes)
        result.adv[key] = a.cpu()
        result.pred[key] = predict(model, a).cpu()
        result.linf[key] = (a - x).abs().flatten(1).amax(dim=1).cpu()
    return result


def _assemble(batches: list[BatchResult], runs: list[Run], n: int, config: dict[str, Any],
              keep_clean: bool) -> AttackStore:
    """Concatenate the batches (in sample order) into a store; several attacks add the worst case."""
    labels = torch.cat([b.labels for b in batches])
    clean_pred = torch.cat([b.clean_pred for b in batches])
    entries = []
    for attack, eps in runs:
        key = (attack.name, eps)
        pred = torch.cat([b.pred[key] for b in batches])
        composite = bool(attack.members)
        entries.append(AttackEntry(
            method=attack.name, eps=eps, adv=torch.cat([b.adv[key] for b in batches]), pred=pred,
            linf=torch.cat([b.linf[key] for b in batches]), robust_acc=float((pred == labels).double().mean()),
            broken_by=[s for b in batches for s in b.broken_by[key]] if composite else None,
            changes=[c for b in batches for c in b.changes[key]] if key in batches[0].changes else None))
    if len({attack.name for attack, _ in runs}) > 1:
        entries += worst_case(entries, labels, clean_pred)
    events = batches[0].recordings is not None
    return AttackStore(indices=torch.arange(n, dtype=torch.int64), labels=labels, clean_pred=clean_pred,
                       entries=entries, config=config,
                       clean=torch.cat([b.clean for b in batches]) if keep_clean else None,
                       clean_events=[r for b in batches for r in b.recordings] if events else None,
                       sensors=torch.tensor([s for b in batches for s in b.sensors]) if events else None)


def _store_config(model: nn.Module, source: nn.Module | None, config: AttackConfig, attacks: list[Attack],
                  n: int, n_classes: int, device: torch.device, meta: dict[str, Any] | None) -> dict[str, Any]:
    """The store's JSON config: attack settings and budgets, model(s), each attack's gradient in
    words, provenance."""
    # the run's gradient, from the first attack that takes it; an ensemble's members bring their own
    gradient_attack = next((a for a in attacks if not a.gradient_free and not METHODS[a.method].own_gradients), None)
    own = any(METHODS[a.method].own_gradients for a in attacks) and config.grad != "transfer"
    gradient = ({"grad": "each ensemble member its own", "surrogate": "-"} if own and gradient_attack is None else
                describe_gradient(model, config.grad, gradient_attack.surrogate if gradient_attack else None, source))
    return {
        "attack": config.to_dict(),
        "budgets": budgets(config, n_classes),
        "attacks": [describe_attack(a, model, config, source) for a in attacks],
        "model": model.cfg.to_dict() if hasattr(model, "cfg") else None,
        "kind": "snn" if is_snn(model) else "ann",
        "model_digest": weights_digest(model),
        "source_model": source.cfg.to_dict() if source is not None and hasattr(source, "cfg") else None,
        "source_digest": weights_digest(source) if source is not None else None,
        "gradient": gradient,
        "split": config.split, "n_samples": n, "device": str(device), "processes": distributed.world_size(),
        **(meta or {}),
    }


def run_attacks(model: nn.Module, dataset: Dataset, config: AttackConfig,
                device: str | torch.device = "cpu", source: nn.Module | None = None,
                meta: dict[str, Any] | None = None, progress: bool = False,
                partial: Partial | None = None) -> AttackStore:
    """Attack the first `config.samples` samples of `dataset` with every attack and eps.

    `model` is the evaluated target (moved to `device`, run in eval mode, restored after);
    `source` the crafting model for grad="transfer". `meta` (checkpoint path, data spec,
    split, ...) is added to the store's config. `partial` saves every finished batch in its
    folder, and with `partial.resume` continues from the batches already saved there
    (suite.attacks.resume); the caller removes the folder once the store is written.
    Returns the store, not yet written. Under torchrun every process calls this alike,
    attacks its share of the batches and returns the whole store.
    """
    device = torch.device(device)
    config = config.for_model(is_snn(source if config.grad == "transfer" else model))
    check_source(config.grad, source is not None)
    n = _sample_count(dataset, config)
    distributed.init(device)
    model.to(device)
    n_classes = _num_classes(model, dataset)
    check_classes(config.methods, n_classes)
    attackers = Attackers(model, config, source, device)
    attacks = attackers.attacks
    runs = [(a, e) for a in attacks for e in config.budgets]
    store_config = _store_config(model, source, config, attacks, n, n_classes, device, meta)
    if config.threat == "events":
        event_source(dataset)  # data without recordings is refused before anything is written
    saved = None
    if partial is not None:  # where and how a run is spread does not change its batches
        identity = {k: v for k, v in store_config.items()
                    if k not in ("device", "processes", "model_digest", "source_digest")}
        identity.update(weights=weights_digest(model, source))  # a retrained checkpoint's batches are not reused
        saved = distributed.broadcast_from_main(lambda: PartialRun(partial.folder, identity, partial.resume))
    starts = distributed.shard(range(0, n, config.batch_size))  # whole batches: the same seeds as one process
    batches = []
    was_training = model.training
    model.eval()
    try:
        with progress_bar(progress and distributed.is_main()) as bar:
            task = bar.add_task("attack", total=len(starts) * len(runs), info="")

            def step(run: Run) -> None:  # before each run: show it; count the run before it as done
                what = f"events={run[1]:g}" if config.threat == "events" else f"eps={format_eps(run[1])}"
                bar.update(task, advance=0 if run == runs[0] else 1, info=f"{run[0].name} {what}")

            for start in starts:
                done = saved.load(start) if saved is not None else None
                if done is not None:
                    batches.append(BatchResult.from_dict(done))
                else:
                    rows = range(start, min(start + config.batch_size, n))
                    x, y = _batch(dataset, rows)
                    recs = event_recordings(dataset, rows) if config.threat == "events" else None
                    batches.append(_attack_batch(attackers, x.to(device), y.to(device), start, runs, n_classes, step,
                                                 recs))
                    if saved is not None:
                        saved.save(start, batches[-1].to_dict())
                bar.advance(task, 1 if done is None else len(runs))
    finally:
        model.train(was_training)
    batches = [b for share in distributed.all_gather_objects(batches) for b in share]  # rank order = batch order
    return _assemble(batches, runs, n, store_config, config.keep_clean)


def attack_checkpoint(checkpoint: str | Path, config: AttackConfig, where: Where,
                      source_checkpoint: str | Path | None = None, dataset: str | None = None,
                      partial: Partial | None = None) -> AttackStore:
    """Load a checkpoint (and a transfer source) on `where.device` and attack it (`attack_loaded`)."""
    from suite.checkpoint import load_model

    device = select_device(where.device)
    model, ckpt = load_model(checkpoint, device)
    source = load_model(source_checkpoint, device)[0] if source_checkpoint else None
    return attack_loaded(model, ckpt, config, replace(where, device=str(device)), source, source_checkpoint,
                         dataset, partial)


def attack_loaded(model: nn.Module, ckpt, config: AttackConfig, where: Where, source: nn.Module | None = None,
                  source_checkpoint: str | Path | None = None, dataset: str | None = None,
                  partial: Partial | None = None) -> AttackStore:
    """Attack a loaded model (`ckpt`: its suite.checkpoint.Checkpoint) on `where.device`, on its
    dataset split under `where.data_root` (or `dataset`, shaped to fit the model)."""
    from suite.data import load_dataset

    spec = ckpt.data_spec_for(dataset)
    data = load_dataset(spec, where.data_root, config.split)
    meta = {"checkpoint": str(ckpt.path), "source_checkpoint": str(source_checkpoint) if source_checkpoint else None,
            "data": spec.to_dict(), "data_root": str(where.data_root)}
    return run_attacks(model, data, config, device=select_device(where.device), source=source, meta=meta,
                       progress=where.show_progress, partial=partial)
