"""The terminal form of a report: each section's facts, tables and notable layers with Rich.

Facts and notes are printed without wrapping (soft wrap), so a file name or number is never
cut in an 80-column log; tables fold text columns and never wrap numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table as RichTable
from rich.text import Text

from suite.report.sections import Cell, Section, Table

VERDICT_STYLE = {"agrees": "green", "disagrees": "red", "inconclusive": "yellow"}


def cka_text(value: float) -> Text:
    """A CKA value coloured from dark (0) to bright (1); undefined shown as n/a."""
    if not math.isfinite(value):
        return Text("n/a", style="red")
    level = int(round(max(0.0, min(1.0, value)) * 5))
    styles = ["grey50", "blue", "cyan", "green", "yellow", "bold bright_white"]
    return Text(f"{value:.2f}", style=styles[level])


def _cell(c: Cell) -> Text:
    if c is None:
        return Text("n/a", style="red")
    if isinstance(c, float):
        return cka_text(c)
    return Text(str(c))


def rich_table(table: Table) -> RichTable:
    """A Rich table in which no name or number is cut: the first column (names) and number
    columns never wrap and keep their full width; other text columns wrap at spaces."""
    out = RichTable(title=escape(table.title), title_justify="left", box=None, pad_edge=False, header_style="bold")
    for k, col in enumerate(table.columns):
        cells = [_cell(r[k]) for r in table.rows]
        numeric = all(isinstance(r[k], float) or r[k] is None or _looks_numeric(r[k]) for r in table.rows)
        whole = k == 0 or numeric
        width = max([len(c.plain) for c in cells] + [len(col) if numeric else 0])
        out.add_column(escape(col), justify="right" if numeric else "left", no_wrap=whole,
                       min_width=width if whole else None, overflow="fold")
    for row in table.rows:
        out.add_row(*[_cell(c) for c in row])
    return out


def _looks_numeric(c: Cell) -> bool:
    text = str(c).rstrip("%")
    try:
        float(text)
    except ValueError:
        return False
    return True


def print_section(console: Console, section: Section) -> None:
    console.print(Rule(style="dim"))
    console.print(f"[bold]{escape(section.title)}[/]", soft_wrap=True)  # a Rule would cut a long title
    for key, value in section.facts:
        console.print(f"[bold]{escape(key)}:[/] {escape(value)}", soft_wrap=True)
    for f in section.findings:
        style = VERDICT_STYLE.get(f["verdict"], "white")
        console.print(f"- {escape(f['sentence'])} [{style}]({escape(f['verdict'])})[/]", soft_wrap=True)
    for table in section.tables:
        console.print(rich_table(table))
    for note in section.notes:
        console.print(f"notable: {escape(note)}", soft_wrap=True)
    console.print()


def print_report(console: Console, sections: list[Section], problems: list[tuple[Path, str]]) -> None:
    """Every section, then one line per file that could not be read."""
    for section in sections:
        print_section(console, section)
    for path, why in problems:
        console.print(f"[yellow]skipped[/] {escape(str(path))}: {escape(why)}", soft_wrap=True)
