"""The one Rich console and progress-bar factory used by long-running library functions."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

console = Console(stderr=False, highlight=False)


def progress_bar(enabled: bool = True, transient: bool = True) -> Progress:
    """A Rich progress bar (description, bar, count, elapsed, remaining, extra fields).

    `enabled=False` gives a bar that prints nothing (library calls from tests); so does
    output that is not a terminal (a log file gets the results, not bar redraws).
    """
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        console=console, disable=not (enabled and console.is_terminal), transient=transient,
    )
