"""Resumable attack runs: each finished batch saved beside the store, so an interrupted run
continues where it stopped.

The folder NAME.partial/ beside NAME.h5 holds `run.json` (what the run is: attack settings,
models, data, and a hash of the weights) and one `batch-<first index>.pt` per finished batch,
each written atomically (suite.files.atomic_path): a crash leaves whole batches only. A resumed
run checks that `run.json` matches, loads the finished batches and attacks the rest; seeds are
per batch (suite.attacks.methods.batch_seed), so the result equals an uninterrupted run's. The
folder is removed once the store is written.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from suite.errors import SuiteError
from suite.files import atomic_path, ensure_out_dir


@dataclass(frozen=True)
class Partial:
    """Where a run keeps its finished batches (`folder`), and whether it continues the run that
    left them there (`resume`)."""

    folder: Path
    resume: bool = False


class PartialRun:
    """The finished batches of one run in `folder`. `resume=False` refuses a folder left by an
    interrupted run (its work would be lost); `resume=True` needs one whose `run.json` matches."""

    def __init__(self, folder: str | Path, identity: dict[str, Any], resume: bool):
        self.folder = Path(folder)
        self.identity = json.loads(json.dumps(identity, sort_keys=True, default=str))
        marker = self.folder / "run.json"
        if self.folder.exists() and not resume:
            raise SuiteError(f"an interrupted run left partial results in {self.folder}; pass --resume to "
                             f"continue it, or delete that folder to start over")
        if resume:
            if not marker.is_file():
                raise SuiteError(f"--resume given but there are no partial results at {self.folder}")
            self._check(marker)
        else:
            ensure_out_dir(self.folder)
            with atomic_path(marker) as tmp:
                tmp.write_text(json.dumps(self.identity, sort_keys=True, indent=1))

    def _check(self, marker: Path) -> None:
        try:
            stored = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise SuiteError(f"{marker} is unreadable ({exc}); delete {self.folder} to start over") from None
        diffs = [k for k in sorted({*stored, *self.identity}) if stored.get(k) != self.identity.get(k)]
        if diffs:
            raise SuiteError(f"the partial results in {self.folder} come from a run with other "
                             f"{', '.join(diffs)}; use the same options, or delete that folder to start over")

    def _path(self, start: int) -> Path:
        return self.folder / f"batch-{start:09d}.pt"

    def load(self, start: int) -> dict[str, Any] | None:
        """The saved batch starting at sample `start`, or None if it was not finished."""
        path = self._path(start)
        if not path.is_file():
            return None
        try:
            return torch.load(path, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem
            raise SuiteError(f"{path} is unreadable ({type(exc).__name__}); delete {self.folder} "
                             f"to start over") from None

    def save(self, start: int, batch: dict[str, Any]) -> None:
        with atomic_path(self._path(start)) as tmp:
            torch.save(batch, tmp)

    @staticmethod
    def remove_folder(folder: str | Path) -> None:
        """Delete a run's partial results (once its store is written)."""
        shutil.rmtree(folder, ignore_errors=True)
