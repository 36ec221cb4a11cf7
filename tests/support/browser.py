"""Headless Chromium for the page tests: a screenshot of a local HTML file, offline."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
TIMEOUT_S = 180  # a cold start on a loaded 2-core machine


def chromium() -> str | None:
    return next((p for p in map(shutil.which, NAMES) if p), None)


def need_chromium() -> str:
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium; .ci/run installs it)")
    return exe


def screenshot(page: Path, out: Path, profile: Path, size: tuple[int, int] = (1280, 2000)) -> np.ndarray:
    """Open `page` in headless Chromium with every host unresolvable (anything the page tried to
    load from a URL would be missing), save a screenshot to `out`; return it as [H, W, 3] in 0..1."""
    from matplotlib.image import imread

    cmd = [need_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}", f"--screenshot={out}",
           f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return imread(out)[..., :3]


def share_near(image: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> float:
    """Fraction of pixels within `tol` (0..255 units, each channel) of colour `rgb`."""
    target = np.array(rgb) / 255.0
    return float((np.abs(image - target) <= tol / 255.0).all(axis=-1).mean())
