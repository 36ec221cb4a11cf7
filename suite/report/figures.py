"""Matplotlib figures of results (PNG), written atomically next to their HDF5 files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from suite.cka.results import CKAResult  # noqa: E402
from suite.store import atomic_path  # noqa: E402


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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
