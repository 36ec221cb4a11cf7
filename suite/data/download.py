"""The one guarded download: a library's own downloader (its URLs and checksums) run with a
bounded socket timeout, so a missing network fails fast with one clear line, never a hang."""

from __future__ import annotations

import http.client
import socket
import urllib.error
import zipfile
from pathlib import Path
from typing import Callable

from suite.errors import SuiteError

DOWNLOAD_TIMEOUT_S = 20


def guarded_download(name: str, make: Callable[[str], object], root: Path) -> None:
    """Call `make(str(root))`, which downloads `name`; network or archive failures -> SuiteError."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        make(str(root))
    except (urllib.error.URLError, OSError, RuntimeError, http.client.HTTPException,
            zipfile.BadZipFile, EOFError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SuiteError(f"download of {name} into {root} failed: {reason}") from None
    finally:
        socket.setdefaulttimeout(old)
