"""Test helpers: the real-recording fixtures and tiny dataset copies in Tonic's folder layouts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from suite.data.event_datasets import (CIFAR10DVS_CLASSES, CIFAR10DVS_FOLDER, NCALTECH101_CLASSES,
                                       NCALTECH101_FOLDER, NMNIST_FOLDER)
from suite.data.events import make_events
from suite.data.static import CALTECH101_FOLDERS, CALTECH101_IMAGES
from tests.support.event_files import write_aedat4, write_atis_bin


def fixtures_dir() -> Path:
    """../shared/fixtures (or $SUITE_FIXTURES); skips the test when the real recordings are absent."""
    env = os.environ.get("SUITE_FIXTURES")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "fixtures"
    if not (path / "sample.aedat4").is_file():
        pytest.skip(f"real event recordings not found in {path} (set SUITE_FIXTURES to their folder)")
    return path


def random_events(n: int, sensor: tuple[int, int], seed: int = 0, duration_us: int = 100_000,
                  origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """n events spread over a width x height sensor (offset by origin), sorted by time."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, n))
    t[0], t[-1] = 0, duration_us  # span the whole duration
    return make_events(origin[0] + rng.integers(0, sensor[0], n), origin[1] + rng.integers(0, sensor[1], n),
                       t, rng.integers(0, 2, n))


def write_cifar10dvs(root: Path, per_class: int = 2, n_events: int = 500) -> list[Path]:
    """A CIFAR10-DVS copy: CIFAR10DVS/<class>/cifar10_<class>_<k>.aedat4, 128x128 events."""
    paths = []
    for c, name in enumerate(CIFAR10DVS_CLASSES):
        for k in range(per_class):
            path = root / CIFAR10DVS_FOLDER / name / f"cifar10_{name}_{k}.aedat4"
            paths.append(write_aedat4(path, random_events(n_events, (128, 128), seed=100 * c + k), (128, 128)))
    return paths


def write_nmnist(root: Path, per_class: int = 1, n_events: int = 200) -> list[Path]:
    """An N-MNIST copy: NMNIST/{Train,Test}/<digit>/<k>.bin, 34x34 events."""
    paths = []
    for split in ("Train", "Test"):
        for d in range(10):
            for k in range(per_class):
                path = root / NMNIST_FOLDER / split / str(d) / f"{k:05d}.bin"
                paths.append(write_atis_bin(path, random_events(n_events, (34, 34), seed=1000 * d + k)))
    return paths


def write_ncaltech101(root: Path, per_class: int = 2, n_events: int = 100) -> list[Path]:
    """An N-Caltech101 copy: NCALTECH101/Caltech101/<class>/image_000k.bin, recordings of
    varying extent placed off the sensor origin (as real ATIS recordings are)."""
    paths = []
    for c, name in enumerate(NCALTECH101_CLASSES):
        for k in range(1, per_class + 1):
            extent = (60 + (c % 7) * 20, 50 + (c % 5) * 20)
            events = random_events(n_events, extent, seed=c * 10 + k, origin=(5 + c % 3, 3))
            paths.append(write_atis_bin(root / NCALTECH101_FOLDER / "Caltech101" / name / f"image_{k:04d}.bin", events))
    return paths


def write_caltech101(root: Path, per_class: int = 2, side: int = 12) -> list[Path]:
    """A Caltech101 copy (torchvision layout): caltech101/101_ObjectCategories/<class>/image_000k.jpg."""
    from PIL import Image

    paths = []
    rng = np.random.default_rng(0)
    for name in CALTECH101_FOLDERS:
        for k in range(1, per_class + 1):
            path = root / CALTECH101_IMAGES / name / f"image_{k:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (side, side + 4, 3), dtype=np.uint8)).save(path)
            paths.append(path)
    return paths
