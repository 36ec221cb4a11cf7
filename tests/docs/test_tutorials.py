"""Every tutorial's commands run, page after page, in one fresh folder, as a reader would type
them (slow: 25 minutes on 2 cores). The bash and python blocks of each page run in
order; a command that fails fails its page's test, naming the command and its output.

`SUITE_DOC_TRANSCRIPTS=DIR pytest -m slow tests/docs/test_tutorials.py` also writes what each
block printed (at 80 columns, as in a CI log) to DIR, which is where the pages' output blocks
come from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.doc_pages import DOCS, ROOT, TUTORIALS, blocks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A reader's folder: empty but for a copy of the repository's examples/."""
    folder = tmp_path_factory.mktemp("reader")
    shutil.copytree(ROOT / "examples", folder / "examples")
    return folder


def run_block(block, folder: Path, transcripts: Path | None, n: int) -> None:
    env = {**os.environ, "COLUMNS": "80", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if block.lang == "python":
        script = folder / f".block-{n}.py"
        script.write_text(block.text)
        argv = [sys.executable, str(script)]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.text]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=3600)
    if transcripts is not None:
        transcripts.mkdir(parents=True, exist_ok=True)
        (transcripts / f"{block.page.stem}-{n:02d}.txt").write_text(
            f"$ {block.text}\n{done.stdout}{done.stderr}", encoding="utf-8")
    assert done.returncode == 0, f"{block.where} failed ({done.returncode}):\n{block.text}\n{done.stdout[-3000:]}" \
                                 f"\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("name", TUTORIALS)
def test_the_tutorial_runs(name, workspace):
    page = DOCS / "tutorials" / f"{name}.md"
    transcripts = os.environ.get("SUITE_DOC_TRANSCRIPTS")
    for n, block in enumerate(blocks(page, ("bash", "python"))):
        run_block(block, workspace, Path(transcripts) if transcripts else None, n)
