"""Adversarial stores: the `AttackStore` of one attack run and its HDF5 form (kind "attack");
written by suite.attacks, read by suite.cka (clean-vs-adversarial CKA) and suite.report.

File layout (root of the HDF5 file, beside the provenance attributes of suite.results.h5):

    indices [N] int64        dataset indices of the attacked samples (in `config["split"]`)
    labels [N] int64         their labels
    clean_pred [N] int64     the target's predictions on the clean inputs
    clean [N, ...] float32   the clean inputs themselves (optional, see below)
    recordings/data, /offsets  (--threat events) the clean recordings, ragged: one array of
                             events (suite.data.events.EVENT_DTYPE: x, y, t, p) and offsets [N + 1]
    sensors [N, 2] int64     (--threat events) each recording's sensor width and height
    attacks/<k>              one group per (method, eps), k = "00", "01", ... in run order:
        adv [N, ...] float32     adversarial inputs, in [0, 1] (event stores: their frames)
        pred [N] int64           the target's predictions on them
        linf [N] float32         measured max |adv - clean| per sample (<= eps); event stores:
                                 the events changed per sample (<= the budget, held in eps)
        broken_by [N] str        (composite and worst-case entries) the attack that fooled the
                                 model on each sample: "" robust, "clean" already wrong clean
        removed/data, /offsets   (--threat events) per sample, the indices of the clean events
                                 removed (ragged, as recordings)
        added/data, /offsets     (--threat events) per sample, the events added (EVENT_DTYPE)
        moved [N] int64          (--threat events) per sample, the events moved (retiming)
        n_added, n_removed [N] int64  (--threat events) per sample, the events added and removed
        fraction [N] float32     (--threat events) per sample, the events changed as a fraction
                                 of the clean recording's events
        attributes: method, eps, robust_acc, linf_mean, linf_max; event entries: fraction_mean
    attributes: clean_acc, n_samples; root config (JSON): attack config, budgets per method,
    the attacks (name, method, surrogate, gradient in words), model config(s), checkpoint
    path(s), data spec, split, gradient description, sanity checks and masking verdict.

Clean inputs: the indices plus the stored data spec always rebuild them (`rebuild_clean`).
They are also stored by default (`AttackStore.clean`), which makes a store self-contained
(clean-vs-adversarial CKA needs no dataset) at the cost of one more [N, ...] array;
`run_attacks(..., keep_clean=False)` leaves them out for large runs. float32 throughout:
float16's spacing near 1 is 1/2048: rounding errors up to 1/4096 (6% of
1/255) that can push |adv - clean| past eps.
Bounds (every |adv - clean| <= eps, every value in [0, 1]; for event entries every change within
its budget and its recording) are verified on write and read. `AttackStore.recordings(method,
budget)` gives an event entry's adversarial recordings (suite.attacks.event_threat).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor

from suite.errors import SuiteError
from suite.results.h5 import open_h5, read_config, read_provenance, read_strings, write_h5, write_strings

KIND = "attack"
TOLERANCE = 1e-6  # float32 rounding of clean + delta in torchattacks' projection
ON_GRID = 1e-6  # eps * 255 this close to an integer k is k/255 (8/255 is not exact in floats)
SAME = 1e-9  # stored float64 values (eps, accuracies) that differ by less are equal: rounding only


def at_budget(label: str) -> str:
    """A budget's label in a phrase: "eps 8/255", or "50 events" as it is."""
    return label if label.endswith(" events") else f"eps {label}"


def budget_stem(eps: float, threat: str = "frames") -> str:
    """A budget in a file name: eps8_255, or events50."""
    return f"events{eps:g}" if threat == "events" else "eps" + format_eps(eps).replace("/", "_")


def clean_adv_stem(path: Path) -> str:
    """The common name of one clean-vs-adversarial run's result files: without -epsE or -eventsK."""
    return re.sub(r"-(eps[^-]*|events[0-9.]+)$", "", Path(path).stem)


def format_eps(eps: float, threat: str = "frames") -> str:
    """8/255 for multiples of 1/255, else the decimal ("0.03"); a budget of --threat events in
    events ("50 events")."""
    if threat == "events":
        return f"{eps:g} events"
    k = eps * 255
    return f"{round(k)}/255" if eps > 0 and abs(k - round(k)) < ON_GRID else f"{eps:g}"


# The robust accuracy to quote, per kind of the attacked model (docs/guide/attacks.md "Which method for which
# claim"): a composite that holds Square, at its standard budget. Any other store's numbers are
# upper bounds on robustness.
QUOTABLE = {"snn": "ensemble", "ann": "autoattack"}


def quote_note(config: dict[str, Any]) -> str | None:
    """What a reader must know of a store's robust accuracy (its JSON config): None when it
    holds an attack whose number may be quoted (QUOTABLE, or the ensemble on an ANN, each at the
    standard budget and white-box); else that the numbers are upper bounds, and the command
    that gives one to quote."""
    attack, budgets = config.get("attack", {}), config.get("budgets", {})
    kind = config.get("kind") or (config.get("model") or {}).get("kind") or "snn"
    methods = [m for m in attack.get("methods", []) if m != "worst"]
    transfer = attack.get("grad") == "transfer"
    if attack.get("threat") == "events":
        return _events_note(config, methods, transfer)
    standard = {"ensemble": budgets.get("ensemble", {}).get("budget") == "standard",
                "autoattack": bool(budgets.get("autoattack", {}).get("standard"))}
    quotable = [m for m in methods if standard.get(m) and (m == QUOTABLE[kind] or kind == "ann")]
    if quotable and not transfer:
        return None
    quote = QUOTABLE[kind]
    eps = ",".join(format_eps(e) for e in attack.get("eps", []) if e > 0) or "8/255"
    named = [f"{m} at --budget {budgets[m]['budget']}" if m == "ensemble" and not standard[m] else m for m in methods]
    what = "a transfer attack" if transfer else ", ".join(named) + " alone"
    return (f"upper bound: {what} finds some of the model's weaknesses, not all; for a robust accuracy "
            f"to quote run suite attack --model {config.get('checkpoint', 'MODEL')} --method {quote} --eps {eps}"
            + (" (its standard budget)" if quote == "ensemble" else ""))


# The worst case over these is the strongest number the event threat model has (benchmarks/README.md)
EVENT_QUOTABLE = ("event-pgd", "event-sparse")
RETIMING = frozenset({"event-retime", "event-random-retime"})  # events moved between bins: budgets count moves


def _events_note(config: dict[str, Any], methods: list[str], transfer: bool) -> str | None:
    """quote_note under --threat events: None when the store's worst case covers EVENT_QUOTABLE."""
    if set(EVENT_QUOTABLE) <= set(methods) and not transfer:
        return None
    events = ",".join(str(k) for k in config.get("attack", {}).get("events", [])) or "0,10,50,200"
    what = "a transfer attack" if transfer else ", ".join(methods) + " alone"
    command = (f"suite attack --model {config.get('checkpoint', 'MODEL')} --threat events --method "
               f"{','.join(EVENT_QUOTABLE)} --events {events} (the worst case of both)")
    if methods and set(methods) <= RETIMING and not transfer:  # a threat of its own: every count kept
        return (f"upper bound: {what} finds some of the recordings' weaknesses to retiming, not all (the suite "
                f"has no stronger retiming attack); for robustness to events added and removed run {command}")
    return f"upper bound: {what} finds some of the recordings' weaknesses, not all; for a robust accuracy to " \
           f"quote run {command}"


def robustness_notes(config: dict[str, Any]) -> list[str]:
    """What a reader must know under a store's robustness table: its unit under --threat events,
    that frame-space perturbations of event data are not event streams, and `quote_note`."""
    attack, data = config.get("attack", {}), config.get("data") or {}
    notes = []
    if attack.get("threat") == "events":
        notes.append("budgets in events per sample: added plus removed (moved, for the retiming attacks); "
                     "every adversarial example is a recording, its frames made by the clean frames' pipeline")
    elif data.get("frames"):
        notes.append("frame-space perturbations of event frames: not realisable as events "
                     "(--threat events attacks the recordings)")
    quote = quote_note(config)
    return notes + ([quote] if quote else [])


@dataclass
class EventChange:
    """What an event attack did to one recording (suite.attacks.event_threat): the indices of the
    events it removed (sorted) and the events it added; a move removes an event and adds it back
    retimed (`moved` counts them)."""

    removed: np.ndarray  # int64 indices into the clean recording
    added: np.ndarray  # the event dtype (suite.data.events.EVENT_DTYPE)
    moved: int = 0

    @property
    def changed(self) -> int:
        """What a budget counts: events added plus removed, or moved for retiming."""
        return self.moved if self.moved else len(self.added) + len(self.removed)

    def apply(self, clean: np.ndarray) -> np.ndarray:
        """The adversarial recording: `clean` without the removed events, with the added ones,
        sorted by time (stably: the clean order kept, added events after)."""
        out = np.concatenate([np.delete(clean, self.removed), self.added])
        return out[np.argsort(out["t"], kind="stable")]


@dataclass
class AttackEntry:
    """One (method, eps) of a run: adversarial inputs and what the target made of them."""

    method: str
    eps: float
    adv: Tensor  # [N, ...] float32 in [0, 1]
    pred: Tensor  # [N] int64
    linf: Tensor  # [N] float32, measured max |adv - clean|; --threat events: events changed
    robust_acc: float
    broken_by: list[str] | None = None  # [N] which attack fooled the model (composite, worst case)
    changes: list[EventChange] | None = None  # [N] --threat events: the change to each recording

    @property
    def threat(self) -> str:
        return "events" if self.changes is not None else "frames"

    @property
    def label(self) -> str:
        return f"{self.method} at {format_eps(self.eps, self.threat)}" if self.changes is not None \
            else f"{self.method} eps={format_eps(self.eps)}"


@dataclass(frozen=True)
class AttackRecord:
    """One attack of a run as its store records it: the name its entries carry, its method, how
    the attacker differentiated the model (`mode`: bptt, bptr, transfer, ...; None for a
    gradient-free method) and the surrogate it differentiated (None where none was: an ANN,
    bptr, a gradient-free method)."""

    name: str
    method: str
    mode: str | None = None
    surrogate: str | None = None
    gradient_free: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any], mode: str | None) -> "AttackRecord":
        """A record of `config["attacks"]`. Stores written before `mode` and `attack_surrogate`
        were recorded give the run's mode and the surrogate in words ("-" or "rate (IF)": none)."""
        free = bool(d.get("gradient_free", False))
        surrogate = d.get("attack_surrogate", d.get("surrogate"))
        if surrogate in ("-", "?", "rate (IF)", ""):
            surrogate = None
        return cls(name=d["name"], method=d["method"], mode=None if free else d.get("mode", mode),
                   surrogate=None if free else surrogate, gradient_free=free)


@dataclass
class AttackStore:
    """What an attack run produced (in memory, written or read back)."""

    indices: Tensor  # [N] int64, dataset indices in config["split"]
    labels: Tensor  # [N] int64
    clean_pred: Tensor  # [N] int64
    entries: list[AttackEntry]
    config: dict[str, Any] = field(default_factory=dict)
    clean: Tensor | None = None  # [N, ...] float32, or None when not kept
    path: Path | None = None
    clean_events: list[np.ndarray] | None = None  # --threat events: each clean recording (EVENT_DTYPE)
    sensors: Tensor | None = None  # [N, 2] int64: each recording's sensor (width, height)

    @property
    def threat(self) -> str:
        """"frames" (L-inf budgets eps) or "events" (budgets in events: an entry's eps holds one)."""
        return self.config.get("attack", {}).get("threat", "frames")

    def recordings(self, method: str, budget: float) -> list[np.ndarray]:
        """The adversarial recordings of one (method, budget) of an event store, as Tonic reads
        events (structured arrays x, y, t, p); budget 0 gives the clean ones."""
        entry = self.entry(method, budget)
        if self.clean_events is None or entry.changes is None:
            raise SuiteError("the store holds no event recordings (it was not made under --threat events)")
        return [c.apply(r) for c, r in zip(entry.changes, self.clean_events)]

    @property
    def n_samples(self) -> int:
        return int(self.labels.numel())

    @property
    def clean_acc(self) -> float:
        return _accuracy(self.clean_pred, self.labels)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(e.method for e in self.entries))

    def attack(self, name: str) -> AttackRecord:
        """The record of the attack whose entries carry `name` (the worst case: method "worst").
        Stores written before attacks were recorded ran FGSM and PGD with one gradient mode."""
        mode = self.config.get("attack", {}).get("grad")
        for d in self.config.get("attacks", []):
            if d["name"] == name:
                return AttackRecord.from_dict(d, mode)
        return AttackRecord(name, name, None if name == "worst" else mode)

    def for_method(self, method: str) -> list[AttackEntry]:
        """Entries of one method, by increasing eps."""
        return sorted((e for e in self.entries if e.method == method), key=lambda e: e.eps)

    def entry(self, method: str, eps: float) -> AttackEntry:
        for e in self.entries:
            if e.method == method and abs(e.eps - eps) < SAME:
                return e
        have = ", ".join(e.label for e in self.entries)
        raise SuiteError(f"the store has no {method} at {format_eps(eps, self.threat)}; it holds: {have}")

    def change_counts(self, entry: AttackEntry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per sample of an event entry: the events added, the events removed, and the events
        changed (the budget's count) as a fraction of the clean recording's events."""
        added = np.array([len(c.added) for c in entry.changes], dtype=np.int64)
        removed = np.array([len(c.removed) for c in entry.changes], dtype=np.int64)
        changed = np.array([c.changed for c in entry.changes], dtype=np.float64)
        sizes = np.array([max(len(r), 1) for r in self.clean_events], dtype=np.float64)
        return added, removed, (changed / sizes).astype(np.float32)

    def summary(self) -> list[dict[str, Any]]:
        """The robustness curve: one row per (method, eps), in run order."""
        return _summary_rows(self.config, self.clean_acc, self.n_samples, [
            (e.method, e.eps, e.robust_acc, float(e.linf.mean()) if e.linf.numel() else 0.0,
             float(e.linf.max()) if e.linf.numel() else 0.0,
             _mean(self.change_counts(e)[2]) if e.changes is not None and self.clean_events is not None else None)
            for e in self.entries])


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _summary_rows(config: dict[str, Any], clean_acc: float, n_samples: int,
                  entries: list[tuple[str, float, float, float, float, float | None]]) -> list[dict[str, Any]]:
    """Rows of `AttackStore.summary()` from (method, eps, robust_acc, linf_mean, linf_max,
    fraction_mean): the last is the mean fraction of each recording changed (event entries;
    None for frames)."""
    gradient = config.get("gradient", {})
    attacks = {a["name"]: a for a in config.get("attacks", [])}
    worst = {"grad": f"worst case over {len(attacks)} attacks", "surrogate": "-"}
    grad = lambda method: worst if method == "worst" else attacks.get(method, gradient)  # noqa: E731
    threat = config.get("attack", {}).get("threat", "frames")
    return [{
        "method": method, "eps": eps, "eps_label": format_eps(eps, threat), "threat": threat,
        "grad": grad(method).get("grad", config.get("attack", {}).get("grad", "?")),
        "attack_surrogate": grad(method).get("surrogate", "?"),
        "clean_acc": clean_acc, "robust_acc": robust_acc, "linf_mean": linf_mean, "linf_max": linf_max,
        "fraction_mean": fraction_mean, "n_samples": n_samples,
    } for method, eps, robust_acc, linf_mean, linf_max, fraction_mean in entries]


@dataclass
class StoreSummary:
    """What a store says about robustness, read without its input arrays (`read_summary`)."""

    path: Path
    config: dict[str, Any]
    n_samples: int
    clean_acc: float
    rows: list[dict[str, Any]]  # as AttackStore.summary()
    provenance: dict[str, Any]


def _accuracy(pred: Tensor, labels: Tensor) -> float:
    return float((pred == labels).double().mean()) if labels.numel() else 0.0


def verify_bounds(store: AttackStore, where: str = "attack store") -> None:
    """Every adversarial input within eps of its clean input (as measured) and in [0, 1]."""
    for e in store.entries:
        if e.adv.shape[0] != store.n_samples or e.pred.shape != store.labels.shape or \
                (e.broken_by is not None and len(e.broken_by) != store.n_samples):
            raise SuiteError(f"{where}: {e.label} holds {e.adv.shape[0]} samples, expected {store.n_samples}")
        if e.adv.numel() == 0:
            continue
        lo, hi = float(e.adv.min()), float(e.adv.max())
        if lo < 0.0 or hi > 1.0:
            raise SuiteError(f"{where}: {e.label} has inputs outside [0, 1] (min {lo:g}, max {hi:g})")
        if store.threat == "events":
            _verify_events(store, e, where)
            continue
        worst = float(e.linf.max())
        if worst > e.eps + TOLERANCE:
            raise SuiteError(f"{where}: {e.label} exceeds its budget: max L-inf {worst:.7f} > eps {e.eps:.7f}")
        if store.clean is not None:
            measured = (e.adv - store.clean).abs().flatten(1).amax(1)
            if not torch.allclose(measured, e.linf, atol=TOLERANCE, rtol=0):
                raise SuiteError(f"{where}: {e.label} stored L-inf norms do not match the inputs")


def _verify_events(store: AttackStore, e: AttackEntry, where: str) -> None:
    """An event entry: a change per sample, each within the budget in events and within its
    recording (removed events are the recording's own)."""
    if e.changes is None or store.clean_events is None or len(e.changes) != store.n_samples:
        raise SuiteError(f"{where}: {e.label} holds no change to each recording")
    for c, clean, n in zip(e.changes, store.clean_events, e.linf.tolist()):
        if c.changed != n or n > e.eps:
            raise SuiteError(f"{where}: {e.label} changes {c.changed} events where {n:g} are recorded, "
                             f"budget {e.eps:g}")
        if len(c.removed) and (c.removed.min() < 0 or c.removed.max() >= len(clean)
                               or len(np.unique(c.removed)) != len(c.removed)):
            raise SuiteError(f"{where}: {e.label} removes events its recording does not have")


def _write_events(group: h5py.Group, name: str, arrays: list[np.ndarray]) -> None:
    """Ragged arrays as one concatenated dataset and offsets [n + 1]."""
    g = group.create_group(name)
    g.create_dataset("data", data=np.concatenate(arrays) if arrays else np.zeros(0), compression="gzip")
    g.create_dataset("offsets", data=np.cumsum([0, *(len(a) for a in arrays)]).astype(np.int64))


def _read_events(group: h5py.Group, name: str) -> list[np.ndarray]:
    data, offsets = group[name]["data"][()], group[name]["offsets"][()]
    return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def write_store(path: str | os.PathLike, store: AttackStore, command: str | None = None,
                device: str | None = None) -> Path:
    """Write atomically through suite.results.h5.write_h5 after verifying the bounds; `device`
    (what the attack ran on; default: the store config's) goes into the provenance."""
    verify_bounds(store, where=f"refusing to write {path}")

    def fill(f: h5py.File) -> None:
        f.create_dataset("indices", data=store.indices.numpy().astype(np.int64))
        f.create_dataset("labels", data=store.labels.numpy().astype(np.int64))
        f.create_dataset("clean_pred", data=store.clean_pred.numpy().astype(np.int64))
        if store.clean is not None:
            f.create_dataset("clean", data=_f32(store.clean))
        if store.clean_events is not None:
            _write_events(f, "recordings", store.clean_events)
            f.create_dataset("sensors", data=store.sensors.numpy().astype(np.int64))
        f.attrs["clean_acc"] = store.clean_acc
        f.attrs["n_samples"] = store.n_samples
        group = f.create_group("attacks")
        for k, e in enumerate(store.entries):
            g = group.create_group(f"{k:02d}")
            g.create_dataset("adv", data=_f32(e.adv))
            g.create_dataset("pred", data=e.pred.numpy().astype(np.int64))
            g.create_dataset("linf", data=_f32(e.linf))
            if e.broken_by is not None:
                write_strings(g, "broken_by", e.broken_by)
            if e.changes is not None:
                _write_events(g, "removed", [c.removed for c in e.changes])
                _write_events(g, "added", [c.added for c in e.changes])
                g.create_dataset("moved", data=np.array([c.moved for c in e.changes], dtype=np.int64))
                added, removed, fraction = store.change_counts(e)
                g.create_dataset("n_added", data=added)
                g.create_dataset("n_removed", data=removed)
                g.create_dataset("fraction", data=fraction)
                g.attrs["fraction_mean"] = _mean(fraction)
            g.attrs.update(method=e.method, eps=float(e.eps), robust_acc=float(e.robust_acc),
                           linf_mean=float(e.linf.mean()) if e.linf.numel() else 0.0,
                           linf_max=float(e.linf.max()) if e.linf.numel() else 0.0)

    device = device if device is not None else store.config.get("device")
    out = write_h5(path, KIND, store.config, fill, command=command, device=device)
    store.path = out
    return out


def read_store(path: str | os.PathLike) -> AttackStore:
    """Read and validate a store; a missing, corrupt, foreign or inconsistent file is a SuiteError."""
    f = open_h5(path, kind=KIND)
    try:
        with f:
            labels = torch.from_numpy(f["labels"][()])
            entries = []
            for k in sorted(f["attacks"], key=int):
                g = f["attacks"][k]
                changes = None
                if "removed" in g:
                    changes = [EventChange(r.astype(np.int64), a, int(m)) for r, a, m in
                               zip(_read_events(g, "removed"), _read_events(g, "added"), g["moved"][()])]
                entries.append(AttackEntry(
                    method=str(g.attrs["method"]), eps=float(g.attrs["eps"]),
                    adv=torch.from_numpy(g["adv"][()]), pred=torch.from_numpy(g["pred"][()]),
                    linf=torch.from_numpy(g["linf"][()]), robust_acc=float(g.attrs["robust_acc"]),
                    broken_by=read_strings(g, "broken_by") if "broken_by" in g else None, changes=changes,
                ))
            store = AttackStore(
                indices=torch.from_numpy(f["indices"][()]), labels=labels,
                clean_pred=torch.from_numpy(f["clean_pred"][()]), entries=entries,
                config=read_config(f), clean=torch.from_numpy(f["clean"][()]) if "clean" in f else None,
                path=Path(path),
                clean_events=_read_events(f, "recordings") if "recordings" in f else None,
                sensors=torch.from_numpy(f["sensors"][()]) if "sensors" in f else None,
            )
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise SuiteError(f"{path} is not a complete attack store ({exc})") from None
    if store.indices.shape != labels.shape or store.clean_pred.shape != labels.shape:
        raise SuiteError(f"{path} is not a consistent attack store (indices, labels and predictions differ in length)")
    verify_bounds(store, where=str(path))
    for e in store.entries:
        if abs(_accuracy(e.pred, labels) - e.robust_acc) > SAME:
            raise SuiteError(f"{path}: stored robust accuracy of {e.label} does not match its predictions")
    return store


def read_summary(path: str | os.PathLike) -> StoreSummary:
    """The robustness rows of a store, for reports: labels and predictions are read and the
    stored accuracies checked against them, the [N, ...] input arrays are not (`read_store`
    reads and verifies those). A missing, corrupt or foreign file is a SuiteError."""
    f = open_h5(path, kind=KIND)
    try:
        with f:
            labels = torch.from_numpy(f["labels"][()])
            clean_pred = torch.from_numpy(f["clean_pred"][()])
            entries = []
            for k in sorted(f["attacks"], key=int):
                g = f["attacks"][k]
                pred = torch.from_numpy(g["pred"][()])
                robust_acc = float(g.attrs["robust_acc"])
                if pred.shape != labels.shape or abs(_accuracy(pred, labels) - robust_acc) > SAME:
                    raise SuiteError(f"{path}: stored robust accuracy of {g.attrs['method']} at "
                                     f"{format_eps(float(g.attrs['eps']), 'events' if 'removed' in g else 'frames')} "
                                     f"does not match its predictions")
                entries.append((str(g.attrs["method"]), float(g.attrs["eps"]), robust_acc,
                                float(g.attrs["linf_mean"]), float(g.attrs["linf_max"]),
                                float(g.attrs["fraction_mean"]) if "fraction_mean" in g.attrs else None))
            config, origin = read_config(f), read_provenance(f)
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise SuiteError(f"{path} is not a complete attack store ({exc})") from None
    if clean_pred.shape != labels.shape:
        raise SuiteError(f"{path} is not a consistent attack store (labels and predictions differ in length)")
    n, clean_acc = int(labels.numel()), _accuracy(clean_pred, labels)
    return StoreSummary(path=Path(path), config=config, n_samples=n, clean_acc=clean_acc,
                        rows=_summary_rows(config, clean_acc, n, entries), provenance=origin)


def check_model(store: AttackStore, model_config) -> None:
    """SuiteError naming every field where `model_config` differs from the store's target model."""
    stored = store.config.get("model")
    if stored is None:
        raise SuiteError("the attack store records no model config to compare with")
    given = model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config)
    diffs = _diff(stored, given)
    if diffs:
        raise SuiteError(f"the attack store was made for a different model: {diffs} (store vs given)")


def check_weights(store: AttackStore, digest: str, model: str) -> None:
    """SuiteError when the store's target had other weights than `model` (its `weights_digest`):
    the same architecture trained apart, or a checkpoint rewritten since the attack. A store
    written before digests were recorded holds none; its model config is all there is to check."""
    stored = store.config.get("model_digest")
    if stored is not None and stored != digest:
        raise SuiteError(f"the attack store was made for other weights than those of {model} (weights "
                         f"sha256 {stored[:12]} in the store, {digest[:12]} given): another training run or a "
                         f"changed checkpoint; pass --other-model to measure examples crafted on another network")


def check_data(store: AttackStore, data_spec) -> None:
    """SuiteError naming every field where `data_spec` differs from the data the store attacked."""
    stored = store.config.get("data")
    if stored is None:
        raise SuiteError("the attack store records no data spec to compare with")
    diffs = _diff(stored, data_spec.to_dict())
    if diffs:
        raise SuiteError(f"the attack store was made on different data: {diffs} (store vs given)")


def rebuild_clean(store: AttackStore, root: str | os.PathLike = ".", data_spec=None) -> Tensor:
    """Clean inputs [N, ...] rebuilt from the dataset indices, checked against the stored
    labels (and stored clean inputs, if kept). `data_spec`, if given, must match the store's."""
    from suite.data import DataSpec, load_dataset

    stored = store.config.get("data")
    split = store.config.get("split")
    if stored is None or split is None:
        raise SuiteError("the attack store records no data spec and split; its clean inputs cannot be rebuilt")
    if data_spec is not None:
        check_data(store, data_spec)
    dataset = load_dataset(DataSpec.from_dict(stored), root, split)
    if store.n_samples and int(store.indices.max()) >= len(dataset):
        raise SuiteError(f"the attack store indexes sample {int(store.indices.max())} but the "
                         f"{stored['name']} {split} split has {len(dataset)}")
    items = [dataset[int(i)] for i in store.indices]
    x = torch.stack([torch.as_tensor(item[0], dtype=torch.float32) for item in items])
    y = torch.tensor([int(item[1]) for item in items], dtype=torch.int64)
    wrong = int((y != store.labels).sum())
    if wrong:
        raise SuiteError(f"{wrong} of {store.n_samples} labels rebuilt from {stored['name']} {split} differ "
                         f"from the store's: the dataset or its split changed")
    if store.clean is not None:
        if store.clean.shape != x.shape:
            raise SuiteError(f"rebuilt clean inputs have shape {list(x.shape)}, stored {list(store.clean.shape)}")
        diff = float((store.clean - x).abs().max()) if x.numel() else 0.0
        if diff > TOLERANCE:
            raise SuiteError(f"rebuilt clean inputs differ from the stored ones (max |diff| {diff:.3g}): "
                             f"the {stored['name']} data changed since the attack")
    return x


def _diff(stored: dict, given: dict) -> str:
    keys = [k for k in dict.fromkeys([*stored, *given]) if _norm(stored.get(k)) != _norm(given.get(k))]
    return ", ".join(f"{k} {stored.get(k)!r} vs {given.get(k)!r}" for k in keys)


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


def _f32(t: Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy()
