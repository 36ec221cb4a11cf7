"""The numbers a finding quotes, read back from the result files an experiment just wrote.

Each measure takes result paths (CKA results, attack stores), reads them through
suite.results, and returns a `Measurement`: the named numbers, the difference `d` its
finding's rule judges, and the text that quotes them. Nothing here is typed in: change a
result file and the numbers, the difference and the sentence change with it.

Periodicity contrast (periodic pattern, checkerboard): for a CKA matrix M over the conv/LIF
layers of the residual blocks, listed block by block with P layers per block, let
lag(k) = mean over i of (M[i, i+k] + M[i+k, i]) / 2. Then
    contrast = lag(P) - (lag(P-1) + lag(P+1)) / 2
compares a layer with the same place in the next block against the layers one step off that
place, at nearly the same distance in the network. A pattern that repeats with every block
makes it positive; similarity that only decays with distance leaves it near 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from suite.errors import SuiteError
from suite.results.attacks import format_eps, read_store
from suite.results.cka import CKAResult


@dataclass
class Measurement:
    """What a measure found: named numbers (None: not measurable), d, and the quoting text."""

    values: dict[str, float | int | None]
    d: float | None
    text: str
    files: list[Path] = field(default_factory=list)


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def fmt(x: float | None, signed: bool = False) -> str:
    """Two decimals, or n/a for a number that could not be measured."""
    if x is None:
        return "n/a"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def diagonal(result: CKAResult) -> list[tuple[str, float | None]]:
    """`result.diagonal()` with undefined values as None (not measurable)."""
    return [(name, _num(v)) for name, v in result.diagonal()]


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def block_names(names: list[str], blocks: list[str]) -> list[str]:
    """The entries of `names` that are block outputs (`blocks`, as the model lists them), in order."""
    wanted = set(blocks)
    return [n for n in names if n in wanted]


def _load(path: Path) -> CKAResult:
    return CKAResult.load(path)


def diagonal_mean(path: Path, blocks: list[str]) -> tuple[float | None, float | None, str]:
    """Mean diagonal CKA of a models comparison, the last block's value and its name."""
    result = _load(path)
    diag = dict(diagonal(result))
    found = block_names(list(diag), blocks)
    if not found:
        raise SuiteError(f"{path}: no block outputs on both sides")
    return _mean(diag.values()), diag[found[-1]], found[-1]


def periodicity(path: Path, period: int) -> dict[str, float | None]:
    """lag(P), the mean of lag(P-1) and lag(P+1), and their contrast (module docstring)."""
    result = _load(path)
    m = result.matrix.double().numpy()
    n = min(m.shape)
    if n < period + 2:
        raise SuiteError(f"{path}: {n} layers are too few for a period of {period} (need {period + 2})")

    def lag(k: int) -> float | None:
        vals = [(m[i, i + k] + m[i + k, i]) / 2 for i in range(n - k)]
        vals = [v for v in vals if math.isfinite(v)]
        return float(np.mean(vals)) if vals else None

    same, before, after = lag(period), lag(period - 1), lag(period + 1)
    off = None if before is None or after is None else (before + after) / 2
    return {"same_place": same, "one_off": off, "contrast": _diff(same, off)}


# ----------------------------------------------------------------------------- the measures
def time_first_vs_last(path: Path, T: int, blocks: list[str]) -> Measurement:
    """Mean CKA between different time steps (t != t') in the first and the last block."""
    result = _load(path)
    blocks = block_names(result.layers_a, blocks)
    if not blocks:
        raise SuiteError(f"{path}: no block outputs in the time comparison")
    off = {}
    for name in (blocks[0], blocks[-1]):
        mat = result.matrix[result.layers_a.index(name)].double().numpy()  # [T, T]
        mask = ~np.eye(mat.shape[0], dtype=bool)
        vals = mat[mask]
        off[name] = _num(vals[np.isfinite(vals)].mean()) if np.isfinite(vals).any() else None
    first, last = off[blocks[0]], off[blocks[-1]]
    d = _diff(last, first)
    text = (f"time-step CKA (mean over t != t'), SNN T={T}: first block {blocks[0]} {fmt(first)} "
            f"vs last block {blocks[-1]} {fmt(last)} (d = last - first = {fmt(d, True)})")
    return Measurement({"T": T, "first_block": first, "last_block": last, "d": d}, d, text, [path])


def residual_ann_likeness(with_res: Path, without: Path, blocks: list[str]) -> Measurement:
    """Mean SNN-vs-ANN diagonal CKA with and without residual connections."""
    mean_r, last_r, name = diagonal_mean(with_res, blocks)
    mean_n, last_n, _ = diagonal_mean(without, blocks)
    d = _diff(mean_r, mean_n)
    text = (f"SNN-vs-ANN CKA, mean over matching layers: {fmt(mean_r)} with residual connections vs "
            f"{fmt(mean_n)} without (last block {name}: {fmt(last_r)} vs {fmt(last_n)}; "
            f"d = with - without = {fmt(d, True)})")
    return Measurement({"mean_residual": mean_r, "mean_no_residual": mean_n, "last_block_residual": last_r,
                        "last_block_no_residual": last_n, "d": d}, d, text, [with_res, without])


def periodic_pattern(with_res: Path, without: Path, period: int) -> Measurement:
    """Periodicity contrast of the SNN's conv/LIF layers against each other, with and without
    residual connections."""
    r, n = periodicity(with_res, period), periodicity(without, period)
    d = r["contrast"]
    text = (f"SNN conv/LIF layers against each other, same place in the next block vs one layer "
            f"off: {fmt(r['same_place'])} vs {fmt(r['one_off'])} with residual connections "
            f"(d = contrast = {fmt(d, True)}); contrast without them {fmt(n['contrast'], True)}")
    return Measurement({"same_place_residual": r["same_place"], "one_off_residual": r["one_off"],
                        "contrast_residual": d, "contrast_no_residual": n["contrast"], "period": period,
                        "d": d}, d, text, [with_res, without])


def checkerboard(path: Path, period: int) -> Measurement:
    """Periodicity contrast of the SNN-vs-ANN CKA over conv/LIF layers."""
    p = periodicity(path, period)
    d = p["contrast"]
    text = (f"SNN-vs-ANN CKA over conv/LIF layers, same place in the next block vs one layer off: "
            f"{fmt(p['same_place'])} vs {fmt(p['one_off'])} (d = contrast = {fmt(d, True)})")
    return Measurement({"same_place": p["same_place"], "one_off": p["one_off"], "period": period, "d": d},
                       d, text, [path])


def diagonal_series(series: dict[str, tuple[Path, list[str]]], what: str, fixed: str) -> Measurement:
    """Mean SNN-vs-ANN diagonal CKA along a series (depths or widths) of (result, its model's
    blocks); d = last - first."""
    means = {label: diagonal_mean(p, blocks)[0] for label, (p, blocks) in series.items()}
    labels = list(means)
    d = _diff(means[labels[-1]], means[labels[0]])
    listed = ", ".join(f"{label} {fmt(v)}" for label, v in means.items())
    text = (f"mean SNN-vs-ANN diagonal CKA by {what}: {listed} ({fixed}; "
            f"d = {labels[-1]} - {labels[0]} = {fmt(d, True)})")
    return Measurement({**{f"mean_{k}": v for k, v in means.items()}, "d": d}, d, text,
                       [p for p, _ in series.values()])


def event_vs_static(event: Path, static: Path, event_name: str, static_name: str, blocks: list[str]) -> Measurement:
    """Mean SNN-vs-ANN diagonal CKA on event data and on static images."""
    mean_e, _, _ = diagonal_mean(event, blocks)
    mean_s, _, _ = diagonal_mean(static, blocks)
    d = _diff(mean_e, mean_s)
    text = (f"mean SNN-vs-ANN diagonal CKA: {fmt(mean_e)} on {event_name} events vs {fmt(mean_s)} on "
            f"{static_name} images (d = events - images = {fmt(d, True)})")
    return Measurement({"mean_event": mean_e, "mean_static": mean_s, "d": d}, d, text, [event, static])


def static_vs_event(path: Path, event_name: str, static_name: str, blocks: list[str]) -> Measurement:
    """Diagonal of static-vs-event CKA: the first and last block and the mean."""
    result = _load(path)
    diag = dict(diagonal(result))
    blocks = block_names(list(diag), blocks)
    if not blocks:
        raise SuiteError(f"{path}: no block outputs on both sides")
    first, last, mean = diag[blocks[0]], diag[blocks[-1]], _mean(diag.values())
    d = _diff(last, first)
    text = (f"static (SNN on {static_name}) vs event (SNN on {event_name}) CKA of the same samples: "
            f"first block {fmt(first)}, last block {fmt(last)}, mean {fmt(mean)} "
            f"(d = last - first = {fmt(d, True)})")
    return Measurement({"first_block": first, "last_block": last, "mean": mean, "d": d}, d, text, [path])


def _adv_at(runs: list[Path]) -> tuple[CKAResult, Path]:
    """The clean-vs-adversarial result with the largest eps."""
    loaded = [(_load(p), p) for p in runs]
    return max(loaded, key=lambda rp: float(rp[0].config.get("eps", 0.0)))


def adv_snn_vs_ann(snn_runs: list[Path], ann_runs: list[Path], snn_store: Path, ann_store: Path) -> Measurement:
    """At the largest eps: robust accuracy and mean clean-vs-adversarial CKA of SNN and ANN."""
    out = {}
    for label, runs, store in (("snn", snn_runs, snn_store), ("ann", ann_runs, ann_store)):
        result, _ = _adv_at(runs)
        eps = float(result.config["eps"])
        method = result.config.get("method", "pgd")
        entry = read_store(store).entry(method, eps)
        out[label] = {"cka": _mean(v for _, v in diagonal(result)), "acc": entry.robust_acc, "eps": eps,
                      "method": method}
    s, a = out["snn"], out["ann"]
    d = _diff(s["cka"], a["cka"])
    text = (f"{s['method'].upper()} at eps {format_eps(s['eps'])}: SNN (BPTT) robust accuracy {s['acc']:.0%}, "
            f"mean clean-vs-adversarial CKA {fmt(s['cka'])}; ANN {a['acc']:.0%}, {fmt(a['cka'])} "
            f"(d = SNN - ANN CKA = {fmt(d, True)})")
    return Measurement({"eps": s["eps"], "snn_robust_acc": s["acc"], "ann_robust_acc": a["acc"],
                        "snn_mean_cka": s["cka"], "ann_mean_cka": a["cka"], "d": d}, d, text,
                       [*snn_runs, *ann_runs, snn_store, ann_store])


def adv_first_vs_last(snn_runs: list[Path], ann_runs: list[Path], blocks: list[str]) -> Measurement:
    """At the largest eps: clean-vs-adversarial CKA of the first and last block, SNN and ANN
    (twins: the same `blocks`)."""
    vals = {}
    for label, runs in (("snn", snn_runs), ("ann", ann_runs)):
        result, path = _adv_at(runs)
        diag = dict(diagonal(result))
        found = block_names(list(diag), blocks)
        if not found:
            raise SuiteError(f"{path}: no block outputs on both sides")
        vals[label] = (diag[found[0]], diag[found[-1]], float(result.config["eps"]))
    (sf, sl, eps), (af, al, _) = vals["snn"], vals["ann"]
    d = _diff(sl, sf)
    text = (f"clean-vs-adversarial CKA at eps {format_eps(eps)}, first vs last block: SNN {fmt(sf)} vs "
            f"{fmt(sl)} (d = last - first = {fmt(d, True)}), ANN {fmt(af)} vs {fmt(al)}")
    return Measurement({"eps": eps, "snn_first_block": sf, "snn_last_block": sl, "ann_first_block": af,
                        "ann_last_block": al, "d": d}, d, text, [*snn_runs, *ann_runs])
