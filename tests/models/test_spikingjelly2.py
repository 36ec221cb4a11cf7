"""The adapter tests again on spikingjelly 2.x, whose import layout and node internals differ from
0.0.0.0.14's (the test extra's). 2.x requires torchaudio, which pulls another torch, so it cannot
share this environment: CI installs it with its one pure-Python need into .sj2/
(`pip install --no-deps --target .sj2 spikingjelly==2.0.0 loguru`, .ci/run) and these tests run
in a subprocess that imports it from there. Without .sj2/ they skip, saying how to run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SJ2 = ROOT / ".sj2"


@pytest.mark.skipif(not (SJ2 / "spikingjelly").is_dir(),
                    reason="spikingjelly 2.x is not in .sj2/: pip install --no-deps --target .sj2 "
                           "spikingjelly==2.0.0 loguru (as .ci/run does)")
def test_the_adapters_pass_their_tests_on_spikingjelly_2():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SJ2), str(ROOT)])}
    check = subprocess.run([sys.executable, "-c", "import spikingjelly, importlib.util, sys; "
                            "sys.exit(importlib.util.find_spec('spikingjelly._ops') is None)"], env=env, cwd=ROOT)
    assert check.returncode == 0, ".sj2/ holds no spikingjelly 2.x"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/models/test_foreign_reference.py", "tests/models/test_foreign_traps.py"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
