"""`suite report` as a library call: collect result files, then print, page and figures.

`make_report` is what the CLI, the demo and `suite experiment` call: it reads every result
under the given paths (naming the files it cannot read), builds the report's sections,
and writes the HTML page and the figure files when asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from suite.errors import SuiteError
from suite.files import ensure_out_dir
from suite.report.collect import Collection, collect
from suite.report.figures import save_figure
from suite.report.page import write_page
from suite.report.sections import Section, build_sections


@dataclass
class Report:
    """What `make_report` read and wrote."""

    collection: Collection
    sections: list[Section]
    page: Path | None = None
    figures: list[Path] = field(default_factory=list)


def write_figures(sections: list[Section], folder: str | os.PathLike, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Every section's figures as FOLDER/<name>.<format>; names made unique with -2, -3, ..."""
    out = ensure_out_dir(folder)
    written: list[Path] = []
    used: dict[str, int] = {}
    for section in sections:
        for spec in section.figures:
            used[spec.name] = used.get(spec.name, 0) + 1
            name = spec.name if used[spec.name] == 1 else f"{spec.name}-{used[spec.name]}"
            written.extend(save_figure(spec.figure(), out / f"{name}.png", formats))
    return written


def make_report(paths: Iterable[str | os.PathLike] | None = None, *, html: str | os.PathLike | None = None,
                figures: str | os.PathLike | None = None, formats: Sequence[str] = ("png",),
                title: str = "suite report") -> Report:
    """Read the results under `paths` (default: reports/, attacks/, runs/), build the sections,
    write the page to `html` and the figures under `figures` when given.

    Files that cannot be read are listed in `report.collection.problems` and on the page; when
    nothing at all can be read, a SuiteError names every problem."""
    if html is not None and Path(html).is_dir():  # checked first: nothing is read or written then
        raise SuiteError(f"--html {html} is a folder; give the page's file name (e.g. {Path(html) / 'report.html'})")
    paths = list(paths) if paths else None
    collection = collect(paths)
    if not len(collection):
        problems = collection.problems
        if len(problems) == 1:
            raise SuiteError(f"{problems[0][0]}: {problems[0][1]}")
        if problems:
            raise SuiteError(f"nothing to report: none of {len(problems)} files could be read ("
                             + "; ".join(f"{p}: {why}" for p, why in problems) + ")")
        where = ", ".join(str(p) for p in paths) if paths else "reports/, attacks/, runs/"
        raise SuiteError(f"nothing to report: no result files (.h5, .pt, experiment .json) under {where}")
    sections = build_sections(collection)
    report = Report(collection, sections)
    if figures is not None:
        report.figures = write_figures(sections, figures, formats)
    if html is not None:
        report.page = write_page(html, sections, collection.problems, title, n_files=len(collection))
    return report
