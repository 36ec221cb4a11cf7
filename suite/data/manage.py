"""Library side of `suite data list / check / download`: listing, integrity checks, downloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from suite.data.frames import cache_bytes
from suite.data.registry import SHOW_MISSING, DataSpec, get_dataset_info, list_datasets
from suite.errors import SuiteError
from suite.progress import progress_bar


def dataset_rows(root: str | Path) -> list[dict]:
    """One row per registered dataset: name, kind, input shape, classes, its folder (relative
    to `root`), whether its files are present, and the bytes its frame caches take under `root`."""
    root = Path(root)
    rows = []
    for name in list_datasets():
        info, spec = get_dataset_info(name), DataSpec(name)
        shape = ((spec.timesteps, 2, spec.size, spec.size) if info.kind == "event"
                 else (spec.channels, spec.size, spec.size))
        rows.append({
            "name": name, "kind": info.kind, "shape": shape, "classes": info.num_classes,
            "folder": info.folder,
            "present": info.offline or not info.missing(root),
            "cache_bytes": cache_bytes(root, name),
        })
    return rows


@dataclass
class DatasetCheck:
    """What `check_dataset` found under `folder` (the dataset's folder): how many raw files it
    read, the corrupt ones as (path relative to `folder`, problem), and the missing ones
    (patterns relative to `folder`)."""

    folder: Path
    files: int
    corrupt: list[tuple[str, str]]
    missing: list[str]

    @property
    def problems(self) -> int:
        return len(self.corrupt) + len(self.missing)


def check_dataset(name: str, root: str | Path, progress: Callable[[int, int, Path], None] | None = None,
                  show_progress: bool = True) -> DatasetCheck:
    """Read every raw file of `name` under `root` and name the corrupt and missing ones.
    `progress(done, total, path)` is called after each file; `show_progress` shows a bar."""
    info = get_dataset_info(name)
    folder = Path(root) / info.folder
    files = info.raw_files(Path(root))
    corrupt = []
    with progress_bar(show_progress) as bar:
        task = bar.add_task(f"check {name}", total=len(files), info="")
        for k, (path, read) in enumerate(files):
            problem = _read_problem(path, read)
            if problem is not None:
                corrupt.append((_relative(path, folder), problem))
            bar.update(task, completed=k + 1, info=path.name)
            if progress is not None:
                progress(k + 1, len(files), path)
    return DatasetCheck(folder, len(files), corrupt, list(info.missing(Path(root))))


def _read_problem(path: Path, read: Callable[[Path], object]) -> str | None:
    """What is wrong with one raw file (its reader's message without the path), or None."""
    try:
        read(path)
    except SuiteError as exc:
        text = str(exc)
        return text[len(str(path)):].lstrip(": ") if text.startswith(str(path)) else text
    except Exception as exc:  # a corrupt file must not stop the check
        return f"unreadable: {type(exc).__name__}: {exc}"
    return None


def _relative(path: Path, folder: Path) -> str:
    """`path` as the user finds it inside the dataset folder (as is when outside it)."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def download_dataset(name: str, root: str | Path) -> Path:
    """Download `name` into `root` with its library's own downloader (the only function that
    reaches the network); SuiteError when it has none or the download fails."""
    info = get_dataset_info(name)
    root = Path(root)
    if info.download is None:
        raise SuiteError(f"dataset {name} has no downloader ({info.source}); nothing to download")
    info.download(root)
    missing = info.missing(root)
    if missing:
        raise SuiteError(f"download of {name} finished but {', '.join(missing[:SHOW_MISSING])} are still missing "
                         f"under {root / info.folder}; obtain it from {info.source}")
    return root / info.folder
