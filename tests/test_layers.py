"""The layers of docs/design.md, as import-linter contracts in pyproject.toml: a lower layer
importing a higher one (or a sibling importing a sibling, e.g. suite.cka -> suite.attacks)
fails this test with import-linter's report of the offending import chain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter", reason="import-linter is in the test extra")
    # A fresh interpreter in the repository root: import-linter analyses this checkout's suite.
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                               "sys.exit(lint_imports(no_cache=True))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_no_module_of_a_package_imports_itself_back():
    """Issue 29: models/spec.py imported the architectures' tables while they imported
    ModelConfig from it (behind TYPE_CHECKING, which counts: the design has a cycle all the
    same). No two modules of one package may import each other, directly or through others;
    the failure names every cycle."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (test extra)")
    graph = grimp.build_graph("suite")
    cycles = []
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        inside = sorted(m for m in graph.find_children(package) if not graph.find_children(m))
        cycles += [f"{a} <-> {b}" for i, a in enumerate(inside) for b in inside[i + 1:]
                   if graph.chain_exists(a, b) and graph.chain_exists(b, a)]
    assert not cycles, "; ".join(cycles)
