"""Matplotlib figures of results (PNG), written atomically next to their HDF5 files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from suite.results.cka import CKAResult  # noqa: E402
from suite.files import atomic_path  # noqa: E402


def cka_figure(result: CKAResult, path: str | Path, title: str = "CKA") -> Path:
    """Heatmap of a CKA matrix, or one small heatmap per layer for time comparisons."""
    path = Path(path)
    if result.compare == "time":
        L = len(result.layers_a)
        cols = min(L, 6)
        rows = (L + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows + 0.6), squeeze=False)
        for ax in axes.flat[L:]:
            ax.axis("off")
        for ax, name, mat in zip(axes.flat, result.layers_a, result.matrix.numpy()):
            im = ax.imshow(mat, vmin=0, vmax=1, cmap="magma")
            ax.set_title(name, fontsize=8)
            ax.set_xlabel("t", fontsize=7)
            ax.set_ylabel("t", fontsize=7)
            ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="CKA")
    else:
        La, Lb = result.matrix.shape
        fig, ax = plt.subplots(figsize=(max(4, 0.35 * Lb + 2), max(3.5, 0.3 * La + 1.5)))
        im = ax.imshow(result.matrix.numpy(), vmin=0, vmax=1, cmap="magma", origin="lower")
        ax.set_xticks(range(Lb), result.layers_b, rotation=90, fontsize=7)
        ax.set_yticks(range(La), result.layers_a, fontsize=7)
        ax.set_ylabel(Path(str(result.config.get("model", "A"))).stem)
        ax.set_xlabel(Path(str(result.config.get("model2", result.config.get("model", "B")))).stem)
        fig.colorbar(im, ax=ax, label="CKA")
    fig.suptitle(f"{title} ({result.n_samples} samples)", fontsize=10)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def robustness_figure(rows: list[dict], path: str | Path, title: str = "robustness") -> Path:
    """Robust accuracy against eps, one line per (model, method, grad); rows of several stores
    share the axes when each row names its `model` (e.g. "SNN", "ANN")."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in dict.fromkeys((r.get("model", ""), r["method"], r["grad"]) for r in rows):
        pts = [r for r in rows if (r.get("model", ""), r["method"], r["grad"]) == key]
        label = " ".join(k for k in key if k)
        ax.plot([r["eps"] * 255 for r in pts], [r["robust_acc"] for r in pts], marker="o", label=label)
    ax.set_xlabel("eps (x 1/255)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, Path(path))


def clean_adv_figure(runs, path: str | Path | None = None, title: str = "clean vs adversarial CKA") -> Path:
    """CKA of each layer on clean vs adversarial inputs, one line per eps (1 = unmoved).
    Default path: the per-eps result name without its -eps part, .png."""
    if path is None:
        path = runs[0].path.with_name(runs[0].path.stem.rsplit("-eps", 1)[0] + ".png")
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * len(runs[0].result.layers_a) + 2), 3.5))
    for run in runs:
        names = [n for n in run.result.layers_a if n in run.result.layers_b]
        values = [float(run.result.matrix[run.result.layers_a.index(n), run.result.layers_b.index(n)]) for n in names]
        ax.plot(range(len(names)), values, marker="o", label=f"eps {run.result.config.get('eps_label', '?')}")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("CKA(clean, adversarial)")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, Path(path))


def diagonal_figure(results: dict[str, CKAResult], path: str | Path, title: str = "CKA diagonal") -> Path:
    """CKA of each layer with the same layer of the other side (the heatmap's diagonal), one line
    per result: SNN vs ANN across depths or widths, with and without residual connections,
    static vs event. Results with different layers share a relative-depth axis (0 to 1)."""
    diagonals = {}
    for label, result in results.items():
        names = [n for n in result.layers_a if n in result.layers_b]
        diagonals[label] = (names, [float(result.matrix[result.layers_a.index(n), result.layers_b.index(n)])
                                    for n in names])
    same = len({tuple(names) for names, _ in diagonals.values()}) == 1
    longest = max(len(names) for names, _ in diagonals.values())
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * longest + 2), 3.5))
    for label, (names, values) in diagonals.items():
        xs = range(len(names)) if same else [i / max(len(names) - 1, 1) for i in range(len(names))]
        ax.plot(list(xs), values, marker="o", markersize=3, label=label)
    if same:
        names = next(iter(diagonals.values()))[0]
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    else:
        ax.set_xlabel("relative depth (first layer 0, last layer 1)")
    ax.set_ylabel("CKA (same layer)")
    lowest = min((v for _, values in diagonals.values() for v in values if v == v), default=0.0)
    ax.set_ylim(min(-0.05, lowest - 0.05), 1.05)  # the unbiased estimator can go below 0
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, Path(path))
