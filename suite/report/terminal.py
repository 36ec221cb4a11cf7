"""The terminal form of a report: each section's facts, tables and notable layers with Rich.

Prose (facts, notes, findings) wraps at spaces only: a word wider than the line, such as a
long file path, runs past the edge whole instead of being cut, so an 80-column log never cuts
a number or a file name. Tables keep names and numbers whole and wrap other text at spaces.
"""

from __future__ import annotations

import math
import re
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


def word_lines(text: Text, width: int) -> list[Text]:
    """`text` broken into lines at spaces only, each at most `width` wide unless one word is
    wider (it then stands whole on its own line); continuation lines are indented by two."""
    plain, offsets, start = text.plain, [], 0
    for word in re.finditer(r"\S+", plain):
        indent = 0 if not offsets else 2
        if word.end() - start + indent > width and word.start() > start:
            offsets.append(word.start())
            start = word.start()
    lines = list(text.divide(offsets))
    for k, line in enumerate(lines):
        line.rstrip()  # in place, like pad_left
        if k:
            line.pad_left(2)
    return lines


def say(console: Console, markup: str) -> None:
    """Print prose wrapped at spaces, never cutting a word (see the module docstring)."""
    for line in word_lines(Text.from_markup(markup), console.width):
        console.print(line, no_wrap=True, overflow="ignore", crop=False)


def print_section(console: Console, section: Section) -> None:
    console.print(Rule(style="dim"))
    say(console, f"[bold]{escape(section.title)}[/]")  # a Rule's title would be cut
    for key, value in section.facts:
        say(console, f"[bold]{escape(key)}:[/] {escape(value)}")
    for f in section.findings:
        style = VERDICT_STYLE.get(f["verdict"], "white")
        say(console, f"- {escape(f['sentence'])} [{style}]({escape(f['verdict'])})[/]")
    for table in section.tables:
        say(console, f"[italic]{escape(table.title)}[/]")  # a table's own title wraps to its width
        console.print(rich_table(table))
    for note in section.notes:
        say(console, f"notable: {escape(note)}")
    for image in section.images:
        say(console, f"figure: {escape(str(image))}")
    console.print()


def print_report(console: Console, sections: list[Section], problems: list[tuple[Path, str]]) -> None:
    """Every section, then one line per file that could not be read."""
    for section in sections:
        print_section(console, section)
    for path, why in problems:
        say(console, f"[yellow]skipped[/] {escape(str(path))}: {escape(why)}")
