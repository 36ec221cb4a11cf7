"""An experiment's figures: a forest plot per finding (d per seed, interval, margin, ceiling and
floor), heatmaps of its first seed's comparisons (those with a noise ceiling get it as a
reference row), and each recipe's summary figures (diagonals, robustness curves). Drawn by
suite.report.figures; a figure newer than every file it shows is not drawn again (a resumed run).
"""

from __future__ import annotations

import re
from pathlib import Path

from suite.experiments.plans import Comparison
from suite.report.figures import cka_figure, clean_adv_lines, diagonal_figure, forest_figure, save_figure
from suite.results.cka import CKAResult
from suite.results.experiment import Finding

First = dict[tuple[str, str], tuple[Comparison, Path]]  # (title, protocol) -> the first seed's result


def _up_to_date(figure: Path, *sources: Path) -> bool:
    return figure.is_file() and all(figure.stat().st_mtime_ns >= s.stat().st_mtime_ns for s in sources)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def forest(finding: Finding, margin: float | None, out: Path) -> list[Path]:
    """OUT/forest-<key>.png: the finding's d under every protocol and measure."""
    return save_figure(forest_figure(finding.estimates, f"{finding.key}: d per protocol and measure",
                                     margin or None), out / f"forest-{finding.key}.png")


def heatmaps(first: First, ceiling_rows: dict[tuple[str, str], Path], out: Path) -> list[Path]:
    """The heatmap (or temporal grid) beside each first-seed result, and for a comparison with a
    noise ceiling a second one, <result>-ceiling.png, with the ceiling as a reference row."""
    written = []
    for (title, protocol), (_, path) in first.items():
        label = f"{title} ({protocol} protocol)"
        png = path.with_suffix(".png")
        if not _up_to_date(png, path):
            save_figure(cka_figure(CKAResult.load(path), label), png)
        written.append(png)
        ceiling = ceiling_rows.get((title, protocol))
        if ceiling is not None:
            ref_png = path.with_name(path.stem + "-ceiling.png")
            if not _up_to_date(ref_png, path, ceiling):
                result = CKAResult.load(ceiling)
                save_figure(cka_figure(CKAResult.load(path), f"{label}, ceiling row: same layer, another seed",
                                       reference=("ceiling: model a vs its next-seed twin", result)), ref_png)
            written.append(ref_png)
    return written


def summaries(kind: str, first: First, out: Path) -> list[Path]:
    """The recipe's summary figures from the first seed under the suite's protocol."""
    suite = {title: (c, path) for (title, protocol), (c, path) in first.items() if protocol == "suite"}
    if kind in ("residual", "event"):
        pairs = [(title, CKAResult.load(p)) for title, (c, p) in suite.items() if c.compare in ("models", "static-event")]
        return save_figure(diagonal_figure(pairs, f"same-layer CKA ({kind})"), out / f"diagonal-{kind}.png") if pairs else []
    if kind == "width-depth":
        pairs = [(title, CKAResult.load(p)) for title, (c, p) in suite.items() if c.layers == "default"]
        return save_figure(diagonal_figure(pairs, "SNN vs ANN diagonal by depth and width"),
                           out / "diagonal-width-depth.png") if pairs else []
    if kind == "adversarial":
        written = []
        for title, (c, path) in suite.items():
            runs = sorted(path.parent.glob(re.sub(r"-eps[^-]*$", "", path.stem) + "-eps*.h5"))
            written += save_figure(clean_adv_lines([CKAResult.load(p) for p in runs], title),
                                   out / f"clean-adv-{_slug(title)}.png")
        return written
    return []
