"""The HTML report: one self-contained page rendered from a jinja2 template shipped with the
package (templates/report.html.j2).

Figures are embedded as base64 PNG data URIs and the styles are inline, so the page loads
nothing from any URL and opens offline. Every section shows its facts, tables, notable
layers, findings and the provenance of each file it used; the page records its own.
The page is written atomically (suite.files.atomic_path).
"""

from __future__ import annotations

import base64
import io
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import matplotlib as mpl
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from suite.files import atomic_path
from suite.report.sections import Cell, Section
from suite.results.provenance import PROVENANCE_KEYS, provenance

TEMPLATE = "report.html.j2"
PAGE_DPI = 110


def figure_uri(fig: Figure) -> str:
    """`data:image/png;base64,...` of a figure, for an <img> that needs no file or URL."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PAGE_DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def png_uri(path: Path) -> str:
    """The data URI of a PNG file already on disk (an experiment's own figures)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cell(c: Cell) -> dict[str, Any]:
    """A table cell for the template: CKA values get the heatmap's colour as background."""
    if c is None or (isinstance(c, float) and not math.isfinite(c)):
        return {"text": "n/a", "style": "background:#c8c8c8;color:#000", "num": True}
    if isinstance(c, float):
        rgba = mpl.colormaps["magma"](max(0.0, min(1.0, c)))
        light = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2] > 0.5
        return {"text": f"{c:.2f}", "style": f"background:{to_hex(rgba)};color:{'#000' if light else '#fff'}",
                "num": True}
    text = str(c)
    return {"text": text, "style": "", "num": _numeric(text)}


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("%"))
    except ValueError:
        return False
    return True


@dataclass
class _Fig:
    title: str
    uri: str


def _template() -> jinja2.Template:
    source = resources.files("suite.report").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(source)


def render_page(sections: list[Section], problems: list[tuple[Path, str]], title: str = "suite report",
                n_files: int | None = None) -> str:
    """The page as a string: every section with its figures drawn and embedded."""
    def table(t):
        return {"title": t.title, "columns": t.columns, "rows": [[_cell(c) for c in row] for row in t.rows]}

    view = []
    for s in sections:
        view.append({
            "title": s.title, "kind": s.kind, "facts": s.facts, "notes": s.notes,
            "findings": [{**f, "table": table(f["table"]) if f.get("table") else None} for f in s.findings],
            "tables": [table(t) for t in s.tables],
            "figures": [_Fig(f.title, figure_uri(f.figure())) for f in s.figures]
                       + [_Fig(p.name, png_uri(p)) for p in s.images],
            "sources": [(str(p), prov) for p, prov in s.sources],
        })
    if n_files is None:
        n_files = len({str(p) for s in sections for p, _ in s.sources})
    return _template().render(title=title, sections=view, problems=[(str(p), w) for p, w in problems],
                              n_files=n_files, provenance_keys=PROVENANCE_KEYS, page_provenance=provenance(None))


def write_page(path: str | os.PathLike, sections: list[Section], problems: list[tuple[Path, str]],
               title: str = "suite report", n_files: int | None = None) -> Path:
    """Render the page and write it atomically to `path` (rendered first: a failure leaves
    any earlier page untouched)."""
    html = render_page(sections, problems, title, n_files)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(path)
