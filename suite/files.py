"""Writing files safely: output folders and atomic writes. The bottom layer (imports no format),
so every writer (checkpoints, results, figures, event files, frame caches) shares it.

A file is written under a temporary name in its target folder and renamed onto the target
(`os.replace`, atomic within one filesystem), so a crash never leaves a half-written file and
readers never see one. The temporary file is created with mode 0666 filtered by the user's umask,
as `open(path, "w")` would create it (0644 under umask 022): `tempfile.mkstemp` would create it
0600 and the rename would keep that private mode, which shared result folders cannot read.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from suite.errors import SuiteError

ORDINARY_MODE = 0o666  # what open() asks for; the kernel removes the umask's bits
_NAME_TRIES = 100  # random temporary names tried before giving up (a clash is ~1 in 2**32)


def ensure_out_dir(path: str | os.PathLike) -> Path:
    """Create an output folder; refuse one that exists as a file."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise SuiteError(f"output folder {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SuiteError(f"cannot create output folder {out}: {exc.strerror}") from None
    return out


def check_target(path: str | os.PathLike) -> Path:
    """A file about to be written: refused where a folder of that name stands (the rename
    cannot replace a folder) or where its folder is a file. Commands call it before their
    work, so a long run never ends in a file it cannot write; `atomic_path` calls it again."""
    target = Path(path)
    if target.is_dir():
        raise SuiteError(f"cannot write {target}: it is a folder")
    if target.parent.exists() and not target.parent.is_dir():
        raise SuiteError(f"output folder {target.parent} exists and is not a folder")
    return target


def _temporary_beside(target: Path) -> Path:
    """Create an empty, new file next to `target` with the umask's ordinary mode; return its path."""
    for _ in range(_NAME_TRIES):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ORDINARY_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise SuiteError(f"cannot write {target}: {exc.strerror or exc}") from None
        os.close(fd)
        return tmp
    raise SuiteError(f"cannot find a free temporary name in folder {target.parent}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.
    The block writes to the yielded path (it may reopen or truncate it, not recreate it)."""
    target = check_target(path)
    ensure_out_dir(target.parent)
    tmp = _temporary_beside(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
