"""Code and docs point only inside the repository: the design notes are docs/design.md, not a
DESIGN.md or ../shared folder outside it (issue 9, defect 8)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md")
# Tests may read the real event-camera recordings in ../shared/fixtures (skipping when absent).
ALLOWED = {"tests/support/event_layouts.py", "tests/test_docs.py"}


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in out.stdout.decode().split("\0") if name]


def test_no_file_points_outside_the_repository():
    hits = []
    for name in tracked_files():
        path = ROOT / name
        if name in ALLOWED or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        hits += [f"{name}:{i}: {line.strip()}" for i, line in enumerate(text.splitlines(), 1)
                 if OUTSIDE.search(line)]
    assert not hits, "references outside the repository:\n" + "\n".join(hits)


def test_design_notes_are_in_the_repository():
    assert (ROOT / "docs" / "design.md").is_file()
