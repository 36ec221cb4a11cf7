"""Provenance: where a result came from (command line, versions, git commit, device, CPU threads,
date).

One dict, built once per run and stored with what the run wrote. `git_commit` is the commit
of the checkout the suite is imported from (None for an installed copy); `cuda_version` is
the CUDA torch was built with (None for a CPU-only build); `threads` is torch's CPU thread count,
which changes the order of float sums in convolutions: the same training run with another
thread count ends with other weights (measured: the demo's SNN, 8 epochs, 1 vs 2 threads,
weights up to 0.6 apart, test accuracy 95.6% vs 94.0%), and an SNN's robust accuracy with them.
"""

from __future__ import annotations

import datetime as _dt
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from suite import __version__

PROVENANCE_KEYS = ("command", "suite_version", "torch_version", "cuda_version", "git_commit", "device", "threads",
                   "created")
ADDED_LATER = ("threads",)  # keys files written before them lack; read as None


def command_line() -> str:
    """The command line that is running, shell-quoted (`suite experiment temporal`); run as
    `python -m suite` (or `torchrun -m suite`), argv[0] is the package's __main__.py, so the
    line names the module instead."""
    program = Path(sys.argv[0])
    name = "python -m suite" if program.name == "__main__.py" and program.parent.name == "suite" else program.name
    return " ".join([name, *(shlex.quote(a) for a in sys.argv[1:])])


def git_commit() -> str | None:
    """HEAD of the git checkout holding the imported `suite` package, with "+dirty" when
    tracked files changed; None outside a checkout or without git."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def provenance(device: str | torch.device | None) -> dict[str, Any]:
    """Command, suite/torch/CUDA versions, git commit, device, CPU threads and date (UTC, ISO
    8601), under PROVENANCE_KEYS; `device` None when the run used none (a merge of stored results)."""
    return {
        "command": command_line(),
        "suite_version": __version__,
        "torch_version": str(torch.__version__),  # a str subclass, which weights-only loading refuses
        "cuda_version": torch.version.cuda,
        "git_commit": git_commit(),
        "device": str(device) if device is not None else None,
        "threads": torch.get_num_threads(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
