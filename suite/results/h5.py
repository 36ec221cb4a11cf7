"""HDF5 helpers: schema version, provenance attributes, checked opening.

Every result file carries root attributes `schema_version`, `suite_version`, `created`,
`command`, `kind`, a JSON `config` and a JSON `provenance` (suite.results.provenance: command,
suite/torch/CUDA versions, git commit, device, date). Files are written atomically
(suite.files.atomic_path), so a crash never leaves a half-written result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from suite.errors import SuiteError
from suite.files import atomic_path
from suite.results.provenance import PROVENANCE_KEYS, provenance

SCHEMA_VERSION = 1


def write_h5(
    path: str | os.PathLike,
    kind: str,
    config: dict[str, Any],
    fill: Callable[[h5py.File], None],
    command: str | None = None,
    device: str | None = None,
) -> Path:
    """Write an HDF5 result atomically: provenance attributes, then `fill(file)` adds the data.
    `command` replaces the running command line; `device` is what the result was computed on."""
    target = Path(path)
    origin = provenance(device)
    if command is not None:
        origin["command"] = command
    with atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["suite_version"] = origin["suite_version"]
            f.attrs["created"] = origin["created"]
            f.attrs["command"] = origin["command"]
            f.attrs["kind"] = kind
            f.attrs["config"] = json.dumps(config, sort_keys=True, default=str)
            f.attrs["provenance"] = json.dumps(origin, sort_keys=True)
            fill(f)
    return target


def read_provenance(f: h5py.File) -> dict[str, Any]:
    """The provenance of a result file (every key of PROVENANCE_KEYS; None where not recorded,
    e.g. torch version and device in files written before provenance was stored whole)."""
    stored = f.attrs.get("provenance")
    try:
        origin = json.loads(stored) if stored is not None else {}
    except (TypeError, ValueError):
        origin = {}
    if not isinstance(origin, dict):
        origin = {}
    for key in ("command", "suite_version", "created"):
        if origin.get(key) is None and key in f.attrs:
            origin[key] = str(f.attrs[key])
    return {key: origin.get(key) for key in PROVENANCE_KEYS}


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
