"""The terminal form of a report: each section's facts, tables and notable layers with Rich.

Follows suite.report.layout: prose (facts, notes, findings) wraps at spaces only, a word
wider than the line (a long path) running past the edge whole; tables keep names and numbers
whole, wrap other text at spaces, and print wider than the console rather than cut.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table as RichTable
from rich.text import Text

from suite.report.layout import print_table, print_words
from suite.report.sections import Cell, Section, Table
from suite.report.tables import cka_cell

VERDICT_STYLE = {"agrees": "green", "disagrees": "red", "inconclusive": "yellow"}


def _cell(c: Cell) -> Text:
    if c is None or isinstance(c, float):
        return cka_cell(float("nan") if c is None else c)
    return Text(str(c))


def rich_table(table: Table) -> RichTable:
    """A Rich table (its title printed separately) in which no name or number is cut: the first column (names) and number
    columns never wrap and keep their full width; other text columns wrap at spaces."""
    out = RichTable(box=None, pad_edge=False, header_style="bold")
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
    print_words(console, f"[bold]{escape(section.title)}[/]")  # a Rule's title would be cut
    for key, value in section.facts:
        print_words(console, f"[bold]{escape(key)}:[/] {escape(value)}")
    for f in section.findings:
        style = VERDICT_STYLE.get(f["verdict"], "white")
        print_words(console, f"- {escape(f['lead'])}[{style}]{escape(f['verdict'])}[/]")
    for table in section.tables:
        print_words(console, f"[italic]{escape(table.title)}[/]")  # a table's own title wraps to its width
        print_table(console, rich_table(table))
    for note in section.notes:
        print_words(console, f"notable: {escape(note)}")
    for image in section.images:
        print_words(console, f"figure: {escape(str(image))}")
    console.print()


def print_report(console: Console, sections: list[Section], problems: list[tuple[Path, str]]) -> None:
    """Every section, then one line per file that could not be read."""
    for section in sections:
        print_section(console, section)
    for path, why in problems:
        print_words(console, f"[yellow]skipped[/] {escape(str(path))}: {escape(why)}")
