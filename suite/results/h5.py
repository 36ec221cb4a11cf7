"""HDF5 helpers: schema version, provenance attributes, checked opening.

Every result file carries root attributes `schema_version`, `suite_version`, `created`,
`command`, `kind` and a JSON `config`. Files are written atomically (suite.files.atomic_path),
so a crash never leaves a half-written result.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from suite import __version__
from suite.errors import SuiteError
from suite.files import atomic_path
from suite.results.provenance import command_line

SCHEMA_VERSION = 1


def write_h5(
    path: str | os.PathLike,
    kind: str,
    config: dict[str, Any],
    fill: Callable[[h5py.File], None],
    command: str | None = None,
) -> Path:
    """Write an HDF5 result atomically: provenance attributes, then `fill(file)` adds the data."""
    target = Path(path)
    with atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["suite_version"] = __version__
            f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            f.attrs["command"] = command if command is not None else command_line()
            f.attrs["kind"] = kind
            f.attrs["config"] = json.dumps(config, sort_keys=True, default=str)
            fill(f)
    return target


def open_h5(path: str | os.PathLike, kind: str | None = None) -> h5py.File:
    """Open a suite HDF5 file for reading, checking that it exists, parses and has the right kind."""
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"file not found: {p}")
    try:
        f = h5py.File(p, "r")
    except OSError:
        raise SuiteError(f"{p} is not a readable HDF5 file (truncated or corrupt?)") from None
    version = f.attrs.get("schema_version")
    if version is None:
        f.close()
        raise SuiteError(f"{p} is not a suite result (no schema_version attribute)")
    if int(version) != SCHEMA_VERSION:
        f.close()
        raise SuiteError(f"{p} has schema version {version}; this suite reads {SCHEMA_VERSION}")
    if kind is not None and f.attrs.get("kind") != kind:
        found = f.attrs.get("kind")
        f.close()
        raise SuiteError(f"{p} holds a {found!r} result, expected {kind!r}")
    return f


def read_config(f: h5py.File) -> dict[str, Any]:
    """The JSON config stored on a result file's root."""
    return json.loads(f.attrs["config"])


def write_strings(group: h5py.Group, name: str, values: list[str]) -> None:
    """Store a list of names as a variable-length UTF-8 string dataset."""
    group.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())


def read_strings(group: h5py.Group, name: str) -> list[str]:
    """Read a string dataset written by `write_strings`."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in group[name][()]]
