"""Matplotlib figures of results: CKA heatmaps, temporal grids, robustness curves, per-layer
CKA lines and training curves.

Every function returns a `matplotlib.figure.Figure` (a notebook shows it inline); writing it
is a separate step, `save_figure` (atomic, PNG/PDF/SVG). Figures are built without pyplot, so
importing this module never switches a notebook's backend and figures are freed like any
other object (no pyplot registry to close them in).
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from suite.errors import SuiteError
from suite.values import parse_list
from suite.files import atomic_path
from suite.results.attacks import at_budget
from suite.results.cka import CKAResult

FORMATS = ("png", "pdf", "svg")
DPI = 150
MAX_PIXELS = 2400  # a PNG's longer side at most: a 69-layer heatmap at 150 dpi would be 3700 px (MBs inline)
GRID_COLUMNS = 6  # temporal grid: panels per row
NAN_COLOUR = "#c8c8c8"  # undefined CKA (a constant layer), distinct from every colour of the map
# Date-free metadata: the same figure gives the same PDF/SVG bytes on every run.
_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
             "svg": {"Date": None}}


def _cmap():
    return mpl.colormaps["magma"].with_extremes(bad=NAN_COLOUR)


def _stem(path) -> str:
    return Path(str(path)).stem if path else "?"


def _fit(fig: Figure, title: str) -> str:
    """`title` broken at spaces into lines that fit the figure's width (about 12 characters
    per inch at 10 pt), so a long model name is never clipped at the figure's edges."""
    return textwrap.fill(title, max(30, int(fig.get_figwidth() * 12)), break_long_words=False,
                         break_on_hyphens=False)


def _finite(values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


# ----------------------------------------------------------------------------- CKA matrices
def _axis_names(result: CKAResult) -> tuple[str, str]:
    """What the rows (A) and columns (B) of a CKA matrix are, from the result's config."""
    cfg = result.config
    a, b = _stem(cfg.get("model")), _stem(cfg.get("model2") or cfg.get("model"))
    if result.compare == "clean-adv":
        eps = cfg.get("eps_label", "?")
        return f"{a}, clean", f"{a}, adversarial ({cfg.get('method', '?')} {at_budget(eps)})"
    if result.compare == "static-event":
        return f"{a}, static images", f"{b}, events"
    return a, b


def cka_heatmap(result: CKAResult, title: str | None = None,
                reference: tuple[str, CKAResult] | None = None) -> Figure:
    """Heatmap of a CKA matrix [La, Lb] on the fixed range 0..1 (comparable across figures);
    grey cells are undefined (a layer with constant features). `reference` (label, result) adds a
    row above it, apart, with that result's same-layer values under each column: a noise
    ceiling (the model against its twin of another seed) to read the rows against."""
    if result.compare == "time":
        raise SuiteError("a time comparison is drawn by temporal_grid, not cka_heatmap")
    La, Lb = result.matrix.shape
    extra = 2 if reference else 0  # a blank row, then the reference row
    grid = np.full((La + extra, Lb), np.nan)
    grid[:La] = result.matrix.numpy()
    rows, labels = list(range(La)), list(result.layers_a)
    if reference:
        diag = dict(reference[1].diagonal())
        grid[La + 1] = [diag.get(name, np.nan) for name in result.layers_b]
        rows.append(La + 1)  # no tick on the gap row
        labels.append(reference[0])
    # room for the longest row label (7-point text, about 0.065 in a character) left of the cells
    width = 0.32 * Lb + 1.7 + 0.065 * max(map(len, labels), default=0)
    fig = Figure(figsize=(max(4.5, width), max(3.8, 0.28 * (La + extra) + 1.8)), layout="constrained")
    ax = fig.subplots()
    masked = np.ma.masked_invalid(grid)
    if reference:
        masked.mask[La] = True
    im = ax.imshow(masked, vmin=0, vmax=1, cmap=_cmap(), origin="lower")
    if reference:
        ax.axhspan(La - 0.5, La + 0.5, color="white")  # the gap between the matrix and its reference
    ax.set_xticks(range(Lb), result.layers_b, rotation=90, fontsize=7)
    ax.set_yticks(rows, labels, fontsize=7)
    name_a, name_b = _axis_names(result)
    ax.set_ylabel(name_a, fontsize=8)
    ax.set_xlabel(name_b, fontsize=8)
    fig.colorbar(im, ax=ax, label="CKA")
    fig.suptitle(_fit(fig, f"{title or 'CKA ' + result.compare} ({result.n_samples} samples)"), fontsize=10)
    return fig


def time_colour_range(result: CKAResult) -> tuple[float, float]:
    """(vmin, 1.0) for a temporal grid: vmin is the smallest finite CKA between two distinct
    time steps over all layers, rounded down to 0.05, so the colours spread over the values
    present rather than painting 0.9..1.0 in one colour."""
    T = result.matrix.shape[-1]
    off = ~np.eye(T, dtype=bool)
    values = _finite(result.matrix.numpy()[:, off])
    if values.size == 0:
        return 0.0, 1.0
    low = math.floor(float(values.min()) * 20) / 20
    return min(max(low, 0.0), 0.95), 1.0


def temporal_grid(result: CKAResult, title: str | None = None) -> Figure:
    """Time step vs time step CKA, one panel per layer (a time comparison [L, T, T]).

    All panels share one colour range (`time_colour_range`) so they compare; step labels only
    on the outer panels, cell values written in when T <= 6; grey cells are undefined."""
    if result.compare != "time":
        raise SuiteError(f"temporal_grid draws a time comparison, not {result.compare!r}")
    L, T = len(result.layers_a), result.matrix.shape[-1]
    cols = min(L, GRID_COLUMNS)
    rows = -(-L // cols)
    vmin, vmax = time_colour_range(result)
    fig = Figure(figsize=(1.9 * cols + 1.2, 1.9 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    steps = list(range(T))
    for k, ax in enumerate(axes.flat):
        if k >= L:
            ax.set_visible(False)
            continue
        mat = result.matrix[k].numpy()
        im = ax.imshow(mat, vmin=vmin, vmax=vmax, cmap=_cmap())
        ax.set_title(result.layers_a[k], fontsize=8)
        ax.set_xticks(steps)
        ax.set_yticks(steps)
        ax.tick_params(labelsize=6, length=2)
        if T <= 6:
            for i in range(T):
                for j in range(T):
                    v = mat[i, j]
                    text = "n/a" if not math.isfinite(v) else f"{v:.2f}"
                    dark = math.isfinite(v) and (v - vmin) / max(vmax - vmin, 1e-9) < 0.6
                    ax.text(j, i, text, ha="center", va="center", fontsize=5,
                            color="white" if dark else "black")
    for ax in axes[-1, :]:
        ax.set_xlabel("time step", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("time step", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"CKA (colours span {vmin:.2f}..{vmax:.2f})")
    fig.suptitle(_fit(fig, f"{title or 'CKA between time steps'}: {_stem(result.config.get('model'))} "
                           f"({result.n_samples} samples, T={T})"), fontsize=10)
    return fig


def cka_figure(result: CKAResult, title: str | None = None, reference: tuple[str, CKAResult] | None = None) -> Figure:
    """The figure of one CKA result: a temporal grid for a time comparison, else a heatmap (with
    an optional reference row, see `cka_heatmap`)."""
    return temporal_grid(result, title) if result.compare == "time" else cka_heatmap(result, title, reference)


# ----------------------------------------------------------------------------- per-layer lines
def diagonal_figure(series: Mapping[str, CKAResult] | Sequence[tuple[str, CKAResult]], title: str,
                    ylabel: str = "CKA (same layer)") -> Figure:
    """Same-layer CKA per layer, one line per (label, result): SNN vs ANN across depths or
    widths, with and without residual connections, static vs event. When every result has the
    same layers the x axis names them; otherwise (different depths) it is relative depth 0..1."""
    pairs = list(series.items()) if isinstance(series, Mapping) else list(series)
    if not pairs:
        raise SuiteError("no results to draw")
    diags = [(label, r.diagonal()) for label, r in pairs]
    names = [[n for n, _ in d] for _, d in diags]
    same_layers = all(n == names[0] for n in names)
    fig = Figure(figsize=(max(5.5, 0.35 * max(map(len, names)) + 2.5), 3.8), layout="constrained")
    ax = fig.subplots()
    for label, d in diags:
        if not d:
            continue
        x = range(len(d)) if same_layers else np.linspace(0, 1, len(d)) if len(d) > 1 else [0.0]
        ax.plot(list(x), [v for _, v in d], marker="o", markersize=3.5, label=label)
    if same_layers:
        ax.set_xticks(range(len(names[0])), names[0], rotation=90, fontsize=7)
    else:
        ax.set_xlabel("relative depth (first layer 0, last layer 1)", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    lowest = min((v for _, d in diags for _, v in d if math.isfinite(v)), default=0.0)
    ax.set_ylim(min(-0.05, lowest - 0.05), 1.05)  # the unbiased estimator can go below 0
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(_fit(fig, title), fontsize=10)
    return fig


def clean_adv_lines(results: Sequence[CKAResult], title: str = "clean vs adversarial CKA") -> Figure:
    """CKA of each layer on clean vs adversarial inputs, one line per eps, by increasing eps
    (1 = the attack left the layer's geometry unchanged)."""
    ordered = sorted(results, key=lambda r: float(r.config.get("eps", 0.0)))
    series = [(at_budget(r.config.get("eps_label", "?")), r) for r in ordered]
    return diagonal_figure(series, title, ylabel="CKA(clean, adversarial)")


def static_event_diagonal(results: Sequence[tuple[str, CKAResult]] | CKAResult,
                          title: str = "static vs event CKA") -> Figure:
    """CKA of each layer on a static image vs its event recording (same samples), one line
    per (label, result); a single result is labelled by its two models."""
    if isinstance(results, CKAResult):
        cfg = results.config
        results = [(f"{_stem(cfg.get('model'))} vs {_stem(cfg.get('model2') or cfg.get('model'))}", results)]
    return diagonal_figure(list(results), title, ylabel="CKA(static, event)")


# ----------------------------------------------------------------------------- robustness, training
def robustness_curves(curves: Sequence[tuple[str, list[dict]]], title: str = "robustness") -> Figure:
    """Accuracy against eps for several models on one axes: one colour per model (label), one
    line style per method. `curves` holds (label, rows of `AttackStore.summary()`)."""
    if not curves:
        raise SuiteError("no attack results to draw")
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    colours = mpl.colormaps["tab10"].colors
    methods = list(dict.fromkeys(r["method"] for _, rows in curves for r in rows))
    ticks: dict[float, str] = {}
    events = any(r.get("threat") == "events" for _, rows in curves for r in rows)
    scale = 1 if events else 255  # x: events, or eps in 255ths
    for k, (label, rows) in enumerate(curves):
        for method in dict.fromkeys(r["method"] for r in rows):
            pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["eps"])
            style, marker = _method_style(method, methods.index(method))
            ax.plot([r["eps"] * scale for r in pts], [r["robust_acc"] for r in pts], marker=marker, markersize=4,
                    linestyle=style, color=colours[k % len(colours)], label=f"{label} {method}")
            ticks.update({r["eps"] * scale: r["eps_label"].removesuffix(" events") for r in pts})
    if events:  # budgets like 0, 10, 50, 200: linear near 0, logarithmic beyond
        ax.set_xscale("symlog", linthresh=10)
    ax.set_xticks(sorted(ticks), [ticks[t] for t in sorted(ticks)], fontsize=7)
    ax.minorticks_off()
    top = max(ticks) if ticks else 1.0
    if not events:
        ax.set_xlim(-0.04 * max(top, 1.0), top + 0.04 * max(top, 1.0))
    ax.set_xlabel("events changed per sample (added plus removed; moved, for retiming)" if events else
                  "eps (L-inf budget, fraction of the input range)", fontsize=8)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(_fit(fig, title), fontsize=10)
    return fig


_STYLES = {"pgd": ("-", "o"), "fgsm": ("--", "o"), "worst": ("-", "X"), "event-random": ("--", "."),
           "event-random-retime": ((0, (2, 2)), ".")}
_OTHER_STYLES = [(":", "s"), ("-.", "^"), ((0, (5, 1, 1, 1)), "D"), ((0, (1, 1)), "v"), ((0, (8, 2)), "P")]


def _method_style(method: str, k: int) -> tuple:
    """(line style, marker) of an attack method: PGD solid, FGSM dashed, the worst case solid
    with crosses, any other method its own pattern and marker."""
    return _STYLES.get(method) or _OTHER_STYLES[k % len(_OTHER_STYLES)]


LEGEND_RUNS = 10  # beyond this many runs a legend entry per run fills the figure (48 runs: 144 entries)


def training_curves(runs: Sequence[tuple[str, list[dict]]], title: str = "training") -> Figure:
    """Per-epoch training loss (left) and train/test accuracy (right), one colour per run;
    `runs` holds (label, a checkpoint's metrics: dicts with epoch, train_loss, train_acc, test_acc).
    Up to LEGEND_RUNS runs the legend names each; beyond, it names the line styles and the
    count (the page's checkpoints table names the runs), since 3 entries per run collapsed the axes."""
    if not runs:
        raise SuiteError("no training runs to draw")
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    colours = mpl.colormaps["tab10"].colors
    for k, (label, metrics) in enumerate(runs):
        colour = colours[k % len(colours)]
        epochs = [m.get("epoch", i + 1) for i, m in enumerate(metrics)]
        _plot_metric(loss_ax, epochs, metrics, "train_loss", colour, "-", label)
        _plot_metric(acc_ax, epochs, metrics, "test_acc", colour, "-", f"{label} test")
        _plot_metric(acc_ax, epochs, metrics, "train_acc", colour, ":", f"{label} train")
    loss_ax.set_ylabel("training loss", fontsize=8)
    acc_ax.set_ylabel("accuracy", fontsize=8)
    acc_ax.set_ylim(-0.02, 1.02)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if len(runs) > LEGEND_RUNS:
            continue
        if ax.get_legend_handles_labels()[0]:  # a checkpoint may lack a metric (no test set)
            ax.legend(fontsize=6)
    if len(runs) > LEGEND_RUNS:
        styles = [Line2D([], [], color="0.3", linestyle=ls, label=f"{what} (one colour per run)")
                  for ls, what in (("-", "test"), (":", "train"))]
        acc_ax.legend(handles=styles, fontsize=6, title=f"{len(runs)} runs", title_fontsize=6)
    fig.suptitle(_fit(fig, title), fontsize=10)
    return fig


def _plot_metric(ax: Axes, epochs, metrics, key: str, colour, style: str, label: str) -> None:
    pts = [(e, m[key]) for e, m in zip(epochs, metrics) if isinstance(m.get(key), (int, float))]
    if pts:
        ax.plot([e for e, _ in pts], [v for _, v in pts], color=colour, linestyle=style, marker="o",
                markersize=3, label=label)


# ----------------------------------------------------------------------------- findings
def forest_figure(estimates: Sequence[Mapping], title: str, margin: float | None = None) -> Figure:
    """A finding's difference d under each protocol and measure (one row each): every seed's d
    (grey dots), their mean (diamond) and its 95% interval (bar), with the rule's margin around 0
    shaded. Where the finding compares two models, a second panel shows its similarity (diamond)
    beside the noise ceilings (each model against its twin of another seed, triangles up) and
    the floor (against an untrained twin, triangle down)."""
    rows = list(estimates)
    has_ref = any(e.get("headline") is not None for e in rows)
    fig = Figure(figsize=(8.5 if has_ref else 6.0, 0.42 * len(rows) + 1.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2)) if has_ref else [fig.subplots()]
    ax = axes[0]
    ys = list(range(len(rows)))[::-1]
    if margin:
        ax.axvspan(-margin, margin, color="#e8e8e8", zorder=0, label=f"margin ±{margin:g}")
    ax.axvline(0, color="black", linewidth=0.6)
    for y, e in zip(ys, rows):
        iv = e["interval"]
        seeds = _finite([d for d in iv["per_seed"] if d is not None])
        ax.plot(seeds, [y] * len(seeds), "o", color="#8c8c8c", markersize=3.5, zorder=2)
        if iv.get("lo") is not None and iv.get("hi") is not None:
            ax.plot([iv["lo"], iv["hi"]], [y, y], color="#1f77b4", linewidth=2, zorder=3)
        if iv.get("mean") is not None:
            ax.plot([iv["mean"]], [y], "D", color="#1f77b4", markersize=6, zorder=4)
    ax.set_yticks(ys, [f"{e['protocol']} / {e['measure']}" for e in rows], fontsize=7)
    ax.set_xlabel("d (grey: each seed; blue: mean and 95% interval)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    if margin:
        ax.legend(fontsize=7, loc="best")
    if has_ref:
        _reference_panel(axes[1], rows, ys)
    fig.suptitle(_fit(fig, title), fontsize=10)
    return fig


def _reference_panel(ax: Axes, rows: Sequence[Mapping], ys: list[int]) -> None:
    """The similarity of the compared models against its noise ceilings and floor, per row."""
    colours = ["#2ca02c", "#9467bd"]
    seen: set[str] = set()
    for y, e in zip(ys, rows):
        if e.get("headline") is not None:
            ax.plot([e["headline"]], [y], "D", color="#1f77b4", markersize=6,
                    label=None if "measured" in seen else "measured")
            seen.add("measured")
        for k, (label, v) in enumerate((e.get("ceiling") or {}).items()):
            if v is not None:
                ax.plot([v], [y], "^", color=colours[k % 2], markersize=6,
                        label=None if label in seen else f"ceiling {label}")
                seen.add(label)
        if e.get("floor") is not None:
            ax.plot([e["floor"]], [y], "v", color="#d62728", markersize=6, label=None if "floor" in seen else "floor")
            seen.add("floor")
    ax.set_xlim(min(-0.05, *(v for e in rows for v in _ref_values(e))), 1.05)
    ax.set_xlabel("similarity of the two models", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=6, loc="lower left")


def _ref_values(e: Mapping) -> list[float]:
    vals = [e.get("headline"), e.get("floor"), *(e.get("ceiling") or {}).values()]
    return [v - 0.05 for v in vals if v is not None]


# ----------------------------------------------------------------------------- writing
def parse_formats(text: str) -> tuple[str, ...]:
    """`png,pdf,svg` -> ("png", "pdf", "svg"); an empty item or an unknown format is a SuiteError."""
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in parse_list(text, "--format")))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise SuiteError(f"unknown figure format {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    return formats


def save_figure(fig: Figure, path: str | os.PathLike, formats: Sequence[str] | None = None) -> list[Path]:
    """Write `fig` atomically, once per format (`path` with that suffix); default: the format
    of `path`'s suffix, else PNG. Returns the paths written."""
    path = Path(path)
    if formats is None:
        suffix = path.suffix.lower().lstrip(".")
        formats = (suffix,) if suffix in FORMATS else ("png",)
    written = []
    dpi = min(DPI, MAX_PIXELS / max(fig.get_size_inches()))  # large figures: fewer dots per inch, same layout
    for fmt in formats:
        if fmt not in FORMATS:
            raise SuiteError(f"unknown figure format {fmt!r}; choose from {', '.join(FORMATS)}")
        target = path.with_suffix("." + fmt)
        with atomic_path(target) as tmp, mpl.rc_context({"svg.hashsalt": "suite"}):
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        written.append(target)
    return written
