"""Collecting result files for a report: walk files and folders, read each file with its
format's reader, and keep every file that cannot be read as a named problem.

Read: CKA results and adversarial stores (*.h5, told apart by their `kind` attribute),
checkpoints (*.pt, for their configs, per-epoch metrics and provenance) and experiment
findings (*.json). Other files in a folder (figures, README.md, pages) and hidden files
(temporaries of writes in progress) are not results and are passed over silently; a file
named on the command line is always read, so a wrong one is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import h5py

from suite.checkpoint import Checkpoint, load_checkpoint
from suite.modelfile import is_model_file, read_table
from suite.errors import SuiteError
from suite.results.attacks import KIND as ATTACK_KIND
from suite.results.attacks import StoreSummary, read_summary
from suite.results.cka import KIND as CKA_KIND
from suite.results.cka import CKAResult
from suite.results.experiment import Experiment, read_experiment

RESULT_SUFFIXES = (".h5", ".hdf5", ".pt", ".json")
DEFAULT_FOLDERS = (Path("reports"), Path("attacks"), Path("runs"))


@dataclass
class Collection:
    """Everything read, by format, in path order; `problems` holds (file, why it was skipped)."""

    cka: list[tuple[Path, CKAResult]] = field(default_factory=list)
    attacks: list[StoreSummary] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    experiments: list[Experiment] = field(default_factory=list)
    model_files: list[tuple[Path, dict]] = field(default_factory=list)  # (file, its [model] table)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return (len(self.cka) + len(self.attacks) + len(self.checkpoints) + len(self.experiments)
                + len(self.model_files))


def result_files(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files to read under `paths` (folders walked recursively, hidden entries and
    non-result suffixes passed over), each once, and (path, problem) for paths that do not exist."""
    files: dict[Path, Path] = {}
    missing = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if f.is_file() and f.suffix.lower() in RESULT_SUFFIXES and not any(s.startswith(".") for s in rel):
                    files.setdefault(f.resolve(), f)
        elif p.is_file():
            files.setdefault(p.resolve(), p)
        else:
            missing.append((p, "no such file or folder"))
    return list(files.values()), missing


def h5_kind(path: Path) -> str | None:
    """The `kind` attribute of an HDF5 file (None when it has none); unreadable files raise."""
    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("kind")
    except OSError:
        raise SuiteError(f"{path} is not a readable HDF5 file (truncated or corrupt?)") from None
    return str(kind) if kind is not None else None


def read_one(path: Path, into: Collection) -> None:
    """Read one file into `into` by its suffix (and, for HDF5, its kind); SuiteError if unreadable."""
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        kind = h5_kind(path)
        if kind == ATTACK_KIND:
            into.attacks.append(read_summary(path))
        elif kind == CKA_KIND or kind is None:  # no kind: CKAResult.load names what is missing
            into.cka.append((path, CKAResult.load(path)))
        else:
            raise SuiteError(f"{path} holds a {kind!r} result, which reports do not show")
    elif suffix == ".pt":
        into.checkpoints.append(load_checkpoint(path))
    elif suffix == ".json":
        into.experiments.append(read_experiment(path))
    elif is_model_file(path):  # named on the command line, as a checkpoint may be: read, not built
        into.model_files.append((path, read_table(path)))
    else:
        raise SuiteError(f"{path} is not a result file (reports read {', '.join(RESULT_SUFFIXES)}, "
                         f"and model files .toml)")


def collect(paths: Iterable[str | os.PathLike] | None = None) -> Collection:
    """Read every result under `paths` (default: whichever of reports/, attacks/, runs/ exist).
    A file that cannot be read is recorded in `problems` with the reason; the rest are read."""
    if paths is None:
        paths = [p for p in DEFAULT_FOLDERS if p.is_dir()]
        if not paths:
            raise SuiteError("nothing to report: none of reports/, attacks/, runs/ exists here; name files or folders")
    files, problems = result_files(paths)
    out = Collection(problems=problems)
    for path in files:
        try:
            read_one(path, out)
        except SuiteError as exc:
            out.problems.append((path, _reason(exc, path)))
    return out


def _reason(exc: SuiteError, path: Path) -> str:
    """The error message without its leading file name, which the problem list shows itself
    ("PATH is not a readable HDF5 file" -> "not a readable HDF5 file")."""
    text = str(exc)
    for prefix in (f"{path}: ", f"{path} is ", f"{path} "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text
