"""Library side of `suite data list / check / download`: listing, integrity checks, downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from suite.data.frames import cache_bytes
from suite.data.registry import SHOW_MISSING, DataSpec, get_dataset_info, list_datasets, resolve_spec
from suite.errors import SuiteError


def dataset_rows(root: str | Path) -> list[dict]:
    """One row per registered dataset: name, kind, input shape, classes, expected location,
    whether its files are present, and the bytes its frame caches take under `root`."""
    root = Path(root)
    rows = []
    for name in list_datasets():
        info, spec = get_dataset_info(name), resolve_spec(DataSpec(name))
        shape = ((spec.timesteps, 2, spec.size, spec.size) if info.kind == "event"
                 else (spec.channels, spec.size, spec.size))
        rows.append({
            "name": name, "kind": info.kind, "shape": shape, "classes": info.num_classes,
            "location": info.folder if info.offline else str(root / info.folder),
            "present": info.offline or not info.missing(root),
            "cache_bytes": cache_bytes(root, name),
        })
    return rows


def check_dataset(name: str, root: str | Path,
                  progress: Callable[[int, int, Path], None] | None = None) -> list[tuple[str, str]]:
    """Read every raw file of `name` under `root`; return (file, problem) for each missing or
    corrupt one. `progress(done, total, path)` is called after each file."""
    info = get_dataset_info(name)
    root = Path(root)
    problems = [(str(root / info.folder / m), "missing") for m in info.missing(root)]
    files = info.raw_files(root)
    for k, (path, read) in enumerate(files):
        try:
            read(path)
        except SuiteError as exc:
            text = str(exc)
            problems.append((str(path), text[len(str(path)):].lstrip(": ") if text.startswith(str(path)) else text))
        except Exception as exc:  # a corrupt file must not stop the check
            problems.append((str(path), f"unreadable: {type(exc).__name__}: {exc}"))
        if progress is not None:
            progress(k + 1, len(files), path)
    return problems


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
