"""The numbers a finding quotes, computed from the CKA results an experiment just wrote.

Each measure is a function of the matrices of the results it reads, `get(role)` ([La, Lb], or
[L, T, T] for a time comparison), and returns its named numbers with `d`, the difference its
finding's rule judges. The runner calls it once with each result's matrix under one similarity
measure (the point estimate) and once per bootstrap replicate of the minibatches
(suite.experiments.intervals), so every number has its interval the same way. Nothing here is
typed in: change a result file and the numbers change with it.

The structure a measure needs (which entries are block outputs, each entry's place in its
block) is asked of the models by the runner and handed over in a `Source`.

Periodicity contrast (periodic pattern, checkerboard): for a matrix M over the layers of the
blocks, each entry i has a place (its path in its block b: "act1", "conv1", ... ""). Let
same = the mean of (M[i, j] + M[j, i]) / 2 over pairs where j holds i's place in block b + 1,
and off = the same mean where j is the entry next to that partner (before or after it, within
block b + 1). Then contrast = same - off: positive when a layer resembles the same place in the
next block more than its neighbours there, the pattern that repeats with every block; near 0
when similarity only decays with distance. (With P layers per block this is lag(P) against
lag(P - 1) and lag(P + 1), the pairs across a block boundary left out, and it stays right when a
block holds an extra layer, a shortcut convolution.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from torch import Tensor

from suite.errors import SuiteError
from suite.results.attacks import at_budget, format_eps
from suite.results.cka import CKAResult

Get = Callable[[str], Tensor]  # role -> the matrix of that role's result (point estimate or replicate)
Values = dict[str, float | int | None]


@dataclass(frozen=True)
class Source:
    """One CKA result a finding reads: the result, its file, the block outputs of its model a and
    each of its a-side entries' place in a block (both asked of the model)."""

    result: CKAResult
    path: Path
    blocks: tuple[str, ...]
    places: tuple[tuple[int, str] | None, ...] = ()


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def diagonal(M: Tensor, result: CKAResult) -> list[tuple[str, float | None]]:
    """(layer, value) for every layer on both sides of `result`, in model a's order, read from M
    (the result's matrix under some measure); None where it is undefined."""
    col = {name: j for j, name in enumerate(result.layers_b)}
    return [(name, _num(M[i, col[name]])) for i, name in enumerate(result.layers_a) if name in col]


def _blocks_on_diagonal(M: Tensor, src: Source) -> tuple[dict[str, float | None], list[str]]:
    diag = dict(diagonal(M, src.result))
    found = [n for n in diag if n in set(src.blocks)]
    if not found:
        raise SuiteError(f"{src.path}: no block outputs on both sides")
    return diag, found


def mean_diagonal(M: Tensor, src: Source) -> float | None:
    """The headline of a two-model comparison: its diagonal averaged over the matching layers."""
    return _mean(v for _, v in diagonal(M, src.result))


def periodicity(M: Tensor, src: Source) -> Values:
    """same, off and contrast of the module docstring for matrix M over `src`'s entries."""
    places = src.places
    where = {p: i for i, p in enumerate(places) if p is not None}
    by_block: dict[int, list[int]] = {}
    for i, p in enumerate(places):
        if p is not None:
            by_block.setdefault(p[0], []).append(i)
    m = M.double().numpy()

    def pair(i: int, j: int) -> float:
        return (m[i, j] + m[j, i]) / 2

    same, off = [], []
    for i, p in enumerate(places):
        if p is None or (p[0] + 1, p[1]) not in where:
            continue
        j = where[p[0] + 1, p[1]]
        same.append(pair(i, j))
        row = by_block[p[0] + 1]
        k = row.index(j)
        off += [pair(i, row[q]) for q in (k - 1, k + 1) if 0 <= q < len(row)]
    if not same or not off:
        raise SuiteError(f"{src.path}: too few blocks for a pattern that repeats with them")
    same_v, off_v = _mean(_num(v) for v in same), _mean(_num(v) for v in off)
    return {"same_place": same_v, "one_off": off_v, "contrast": _diff(same_v, off_v)}


# ----------------------------------------------------------------------------- the measures
def time_first_vs_last(get: Get, srcs: dict[str, Source]) -> Values:
    """Mean CKA between different time steps (t != t') in the first and the last block."""
    src = srcs["time"]
    M = get("time")  # [L, T, T]
    blocks = [n for n in src.result.layers_a if n in set(src.blocks)]
    if not blocks:
        raise SuiteError(f"{src.path}: no block outputs in the time comparison")
    off = {}
    for name in (blocks[0], blocks[-1]):
        mat = M[src.result.layers_a.index(name)].double().numpy()
        vals = mat[~np.eye(mat.shape[0], dtype=bool)]
        off[name] = _num(vals[np.isfinite(vals)].mean()) if np.isfinite(vals).any() else None
    first, last = off[blocks[0]], off[blocks[-1]]
    return {"first_block": first, "last_block": last, "d": _diff(last, first)}


def residual_ann_likeness(get: Get, srcs: dict[str, Source]) -> Values:
    """Mean SNN-vs-ANN diagonal CKA with and without residual connections."""
    with_r, without = mean_diagonal(get("with"), srcs["with"]), mean_diagonal(get("without"), srcs["without"])
    return {"mean_residual": with_r, "mean_no_residual": without, "d": _diff(with_r, without)}


def periodic_pattern(get: Get, srcs: dict[str, Source]) -> Values:
    """Periodicity contrast of the SNN's block layers against each other, with and without
    residual connections."""
    r, n = periodicity(get("with"), srcs["with"]), periodicity(get("without"), srcs["without"])
    return {"same_place_residual": r["same_place"], "one_off_residual": r["one_off"],
            "contrast_no_residual": n["contrast"], "d": r["contrast"]}


def checkerboard(get: Get, srcs: dict[str, Source]) -> Values:
    """Periodicity contrast of the SNN-vs-ANN matrix over the block layers."""
    p = periodicity(get("grid"), srcs["grid"])
    return {"same_place": p["same_place"], "one_off": p["one_off"], "d": p["contrast"]}


def diagonal_series(get: Get, srcs: dict[str, Source]) -> Values:
    """Mean SNN-vs-ANN diagonal CKA along a series (roles in order); d = last - first."""
    labels = list(srcs)
    means = {label: mean_diagonal(get(label), srcs[label]) for label in labels}
    return {**{f"mean_{k}": v for k, v in means.items()}, "d": _diff(means[labels[-1]], means[labels[0]])}


def event_vs_static(get: Get, srcs: dict[str, Source]) -> Values:
    """Mean SNN-vs-ANN diagonal CKA on event data and on static images."""
    e, s = mean_diagonal(get("event"), srcs["event"]), mean_diagonal(get("static"), srcs["static"])
    return {"mean_event": e, "mean_static": s, "d": _diff(e, s)}


def static_vs_event(get: Get, srcs: dict[str, Source]) -> Values:
    """Diagonal of static-vs-event CKA (the same samples): first and last block, and the mean."""
    diag, blocks = _blocks_on_diagonal(get("pair"), srcs["pair"])
    first, last = diag[blocks[0]], diag[blocks[-1]]
    return {"first_block": first, "last_block": last, "mean": _mean(diag.values()), "d": _diff(last, first)}


def adv_snn_vs_ann(get: Get, srcs: dict[str, Source]) -> Values:
    """At the largest eps: mean clean-vs-adversarial CKA of SNN and ANN (robust accuracies as
    the results recorded them)."""
    s, a = mean_diagonal(get("snn"), srcs["snn"]), mean_diagonal(get("ann"), srcs["ann"])
    return {"eps": float(srcs["snn"].result.config["eps"]), "events": _events(srcs["snn"]),
            "snn_robust_acc": srcs["snn"].result.config.get("robust_acc"),
            "ann_robust_acc": srcs["ann"].result.config.get("robust_acc"),
            "snn_mean_cka": s, "ann_mean_cka": a, "d": _diff(s, a)}


def adv_first_vs_last(get: Get, srcs: dict[str, Source]) -> Values:
    """At the largest eps: clean-vs-adversarial CKA of the first and last block, SNN and ANN."""
    out: Values = {"eps": float(srcs["snn"].result.config["eps"]), "events": _events(srcs["snn"])}
    for label in ("snn", "ann"):
        diag, blocks = _blocks_on_diagonal(get(label), srcs[label])
        out[f"{label}_first_block"], out[f"{label}_last_block"] = diag[blocks[0]], diag[blocks[-1]]
    out["d"] = _diff(out["snn_last_block"], out["snn_first_block"])
    return out


def _events(src: Source) -> float:
    """1.0 when the result's attack ran under --threat events (its eps is a budget in events)."""
    return 1.0 if str(src.result.config.get("eps_label", "")).endswith(" events") else 0.0


def _budget(v: Values) -> str:
    return at_budget(format_eps(v["eps"], "events" if v.get("events") else "frames"))


# ----------------------------------------------------------------------------- the registry
def fmt(x: float | None, signed: bool = False) -> str:
    """Two decimals, or n/a for a number that could not be measured."""
    if x is None:
        return "n/a"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


@dataclass(frozen=True)
class Measure:
    """A finding's measure: its function, the role whose comparison is its headline two-model
    similarity (for the noise ceiling and floor; None: not a two-model comparison), and the
    words around its numbers (averaged over seeds)."""

    fn: Callable[[Get, dict[str, Source]], Values]
    headline: str | None
    describe: Callable[[Values], str]


MEASURES: dict[str, Measure] = {
    "time-first-vs-last": Measure(time_first_vs_last, None, lambda v: (
        f"time-step CKA (mean over t != t') in the first block {fmt(v['first_block'])} vs the last "
        f"{fmt(v['last_block'])} (d = last - first)")),
    "residual-ann-likeness": Measure(residual_ann_likeness, "with", lambda v: (
        f"SNN-vs-ANN CKA, mean over matching layers: {fmt(v['mean_residual'])} with residual connections vs "
        f"{fmt(v['mean_no_residual'])} without (d = with - without)")),
    "periodic-pattern": Measure(periodic_pattern, None, lambda v: (
        f"SNN block layers against each other, same place in the next block vs one layer off: "
        f"{fmt(v['same_place_residual'])} vs {fmt(v['one_off_residual'])} with residual connections "
        f"(d = contrast; without them {fmt(v['contrast_no_residual'], True)})")),
    "checkerboard": Measure(checkerboard, "grid", lambda v: (
        f"SNN-vs-ANN CKA over the block layers, same place in the next block vs one layer off: "
        f"{fmt(v['same_place'])} vs {fmt(v['one_off'])} (d = contrast)")),
    "diagonal-vs-depth": Measure(diagonal_series, "first", lambda v: (
        "mean SNN-vs-ANN diagonal CKA by depth: " + ", ".join(
            f"{k.removeprefix('mean_')} {fmt(x)}" for k, x in v.items() if k.startswith("mean_"))
        + " (d = deepest - shallowest)")),
    "diagonal-vs-width": Measure(diagonal_series, "first", lambda v: (
        "mean SNN-vs-ANN diagonal CKA by width: " + ", ".join(
            f"{k.removeprefix('mean_')} {fmt(x)}" for k, x in v.items() if k.startswith("mean_"))
        + " (d = widest - narrowest)")),
    "event-vs-static": Measure(event_vs_static, "event", lambda v: (
        f"mean SNN-vs-ANN diagonal CKA: {fmt(v['mean_event'])} on events vs {fmt(v['mean_static'])} on "
        f"images (d = events - images)")),
    "static-vs-event": Measure(static_vs_event, "pair", lambda v: (
        f"static (SNN on images) vs event (SNN on their recordings) CKA of the same samples: first block "
        f"{fmt(v['first_block'])}, last block {fmt(v['last_block'])}, mean {fmt(v['mean'])} "
        f"(d = last - first)")),
    "adv-snn-vs-ann": Measure(adv_snn_vs_ann, None, lambda v: (
        f"at {_budget(v)}: SNN robust accuracy {_pct(v['snn_robust_acc'])}, mean "
        f"clean-vs-adversarial CKA {fmt(v['snn_mean_cka'])}; ANN {_pct(v['ann_robust_acc'])}, "
        f"{fmt(v['ann_mean_cka'])} (d = SNN - ANN CKA)")),
    "adv-first-vs-last": Measure(adv_first_vs_last, None, lambda v: (
        f"clean-vs-adversarial CKA at {_budget(v)}, first vs last block: SNN "
        f"{fmt(v['snn_first_block'])} vs {fmt(v['snn_last_block'])} (d = last - first), ANN "
        f"{fmt(v['ann_first_block'])} vs {fmt(v['ann_last_block'])}")),
}
