"""Rich layout that never cuts a number or a file name, at any width: in a terminal, and in a
pipe or CI log (not a terminal, where Rich lays out at 80 columns).

Every table column is one of two kinds. VALUE columns (numbers, names, short labels) never
wrap. TEXT columns (paths, sentences) fold: a long path goes on inside its cell, line after
line. `print_table` prints a table at the console's width when its value columns fit there,
else at the width they need, leaving the lines longer than the console rather than cut.
`column_blocks` splits a wide grid of values (a CKA matrix, one column per eps) into tables
of as many columns as fit. `print_line` prints a line naming files unbroken; `print_words`
prints prose wrapped at spaces only, each word (a path) whole on its line.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

VALUE = {"no_wrap": True}
TEXT = {"overflow": "fold"}
FOLD_MIN = 16  # a folded column keeps at least this many characters per line


def _natural_width(console: Console, table: Table) -> int:
    """The width `table` takes when nothing wraps."""
    return Measurement.get(console, console.options.update_width(1 << 20), table).maximum


def needed_width(console: Console, table: Table) -> int:
    """The narrowest `table` prints without cutting: value columns at their widest cell,
    text columns folded to FOLD_MIN (or their widest cell, when narrower; their min_width,
    when wider)."""
    options = console.options.update_width(1 << 20)
    natural = _natural_width(console, table)
    spare = 0
    for column in table.columns:
        if not column.no_wrap:
            widest = max(Measurement.get(console, options, cell).maximum for cell in (column.header, *column.cells))
            spare += max(0, widest - max(FOLD_MIN, column.min_width or 0))
    return natural - spare


def print_table(console: Console, table: Table) -> None:
    """Print `table` uncut: at the console's width when it fits, else at the width it needs.
    A title wider than the table goes above it at the console's width (not folded to the
    table's)."""
    need = needed_width(console, table)
    width = max(need, min(_natural_width(console, table), console.width))
    if isinstance(table.title, str) and len(table.title) > width:
        console.print(escape(table.title), overflow="fold")
        table.title = None
    if need <= console.width:
        console.print(table)
    else:
        table.width = need
        console.print(table, crop=False)


def print_line(console: Console, text: str) -> None:
    """Print a line that names files as one unbroken line (a terminal wraps it for show)."""
    console.print(escape(text), soft_wrap=True)


def word_lines(text: Text, width: int) -> list[Text]:
    """`text` broken into lines at spaces only, each at most `width` wide unless one word is
    wider (it then stands whole on its own line); continuation lines are indented by two."""
    offsets, start = [], 0
    for word in re.finditer(r"\S+", text.plain):
        indent = 2 if offsets else 0
        if word.end() - start + indent > width and word.start() > start:
            offsets.append(word.start())
            start = word.start()
    lines = list(text.divide(offsets))
    for k, line in enumerate(lines):
        line.rstrip()  # in place, like pad_left
        if k:
            line.pad_left(2)
    return lines


def print_words(console: Console, markup: str) -> None:
    """Print prose (Rich markup) wrapped at spaces, never cutting a word: a path wider than
    the console runs past its edge whole."""
    for line in word_lines(Text.from_markup(markup), console.width):
        console.print(line, no_wrap=True, overflow="ignore", crop=False)


def column_blocks(title: str, corner: str, rows: list[str], headers: list[str], cells: list[list[Text]],
                  width: int, caption=None) -> list[Table]:
    """A grid of values (`cells[i][j]` for row i, column j) as tables of as many columns as
    fit `width`, each with the row labels. `caption(first, stop)` may name a block's columns."""
    cell_width = max([len(h) for h in headers] + [c.cell_len for row in cells for c in row] + [1])
    label_width = max([len(corner)] + [len(r) for r in rows])
    # box=None, pad_edge=False: the label column, then 1 space + cell + 1 space per column
    fit = max(1, (width - label_width) // (cell_width + 2))
    n_blocks = -(-len(headers) // fit) if headers else 1
    per_block = -(-len(headers) // n_blocks) if headers else 0
    tables = []
    for first in range(0, max(len(headers), 1), max(per_block, 1)):
        stop = min(first + per_block, len(headers))
        part = title if n_blocks == 1 else f"{title}, columns {first + 1}-{stop} of {len(headers)}"
        table = Table(title=part, box=None, pad_edge=False, show_lines=False,
                      caption=caption(first, stop) if caption else None, caption_justify="left")
        table.add_column(corner, style="bold", **VALUE)
        for header in headers[first:stop]:
            table.add_column(header, justify="right", **VALUE)
        for label, row in zip(rows, cells):
            table.add_row(label, *row[first:stop])
        tables.append(table)
    return tables
