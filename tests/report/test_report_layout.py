"""suite.report.layout: tables never cut a number or a name at any console width; wide grids
go in column blocks that fit; a table that cannot fit prints wider instead of cut."""

from __future__ import annotations

import io
import re

import pytest
import torch
from rich.console import Console
from rich.table import Table

from suite.report.layout import FOLD_MIN, TEXT, VALUE, needed_width, print_table
from suite.report.show import show_cka
from suite.report.tables import robustness_table
from tests.report.test_narrow_output import LAYERS, cka_result, column_text, matrix, rows_of


def console(width: int) -> Console:
    return Console(width=width, file=io.StringIO(), highlight=False, color_system=None)


ROWS = [dict(method=m, grad="bptt", attack_surrogate="spike_rate_escape", eps_label=e, clean_acc=0.9875,
             robust_acc=0.4321, linf_mean=0.0313725, linf_max=0.0313726, n_samples=10000)
        for m in ("fgsm", "pgd") for e in ("0", "2/255", "64/255")]


def test_needed_width_by_hand():
    """A boxed table (HEAVY_HEAD): 2 edges + 1 inner border; each column padded 1 each side.
    A 30-wide value column and a 100-wide folding column: 1 + (1+30+1) + 1 + (1+FOLD_MIN+1) + 1."""
    table = Table()
    table.add_column("v", **VALUE)
    table.add_column("t", **TEXT)
    table.add_row("x" * 30, "y" * 100)
    assert needed_width(console(80), table) == 1 + 32 + 1 + (FOLD_MIN + 2) + 1


@pytest.mark.parametrize("width", [30, 50, 80, 200])
def test_robustness_table_is_whole_at_any_width(width):
    con = console(width)
    print_table(con, robustness_table(ROWS, "robustness: a-model-with-a-long-name"))
    out = con.file.getvalue()
    assert "…" not in out
    for number in ("98.8%", "43.2%", "0.0314", "64/255", "2/255"):
        assert len(re.findall(rf"(?<![\d./]){re.escape(number)}(?![\d/])", out)) >= 2, (number, out)
    assert column_text(out, "grad").count("bptt(spike_rate_escape)") == len(ROWS), out
    needed = needed_width(con, robustness_table(ROWS))
    longest = max(len(line) for line in out.splitlines())
    assert longest <= max(width, needed), out  # wider than the console only when it must be
    if needed > width:
        assert longest == needed, out


@pytest.mark.parametrize("width", [40, 60, 80, 132])
def test_matrix_blocks_fit_the_width_and_keep_every_value(width, tmp_path):
    m = matrix(12, 12, seed=5)
    con = console(width)
    show_cka(cka_result(m), None, "CKA a vs b", con)
    out = con.file.getvalue()
    assert "…" not in out
    grid = out[:out.index("CKA a vs b: highlights")]  # (the highlights table may print wider)
    assert max(len(line) for line in grid.splitlines()) <= width, out
    for i, name in enumerate(LAYERS):
        assert rows_of(out, f"A{i} {name}") == [f"{v:.2f}" for v in m[i].tolist()], (i, out)
    blocks = out.count("A \\ B")
    cell = len("-0.01") + 2  # the widest value, padded
    assert blocks == -(-12 // ((width - len("A11 layer3.2")) // cell)), out  # as few blocks as fit


def test_title_wider_than_its_table_stands_on_one_line():
    con = console(80)
    time_m = torch.full((2, 3, 3), 0.5, dtype=torch.float64)
    result = cka_result(time_m, compare="time", layers_a=LAYERS[:2], layers_b=LAYERS[:2])
    show_cka(result, None, "CKA time: snn-T4-w0.5", con)
    lines = con.file.getvalue().splitlines()
    assert lines[0] == "CKA time: snn-T4-w0.5: CKA between time steps (64 samples, T=3)"
    assert len(lines[1]) < len(lines[0])  # the table is narrower than its title
