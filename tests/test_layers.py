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
