"""Events -> frames throughput: raw (read/simulate + ToFrame every time) vs the disk cache.

Builds small synthetic copies in a temporary data root (N-MNIST-like .bin files, CIFAR10-DVS-like
AEDAT4 files) plus the offline `digits-dvs`, and prints samples per second for each path side
by side. Runs in well under a minute:  python benchmarks/frames_speed.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from suite.data import DataSpec, load_dataset
from suite.data.events import make_events
from suite.data.frames import EventFrames

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/
from tests.support.event_files import write_aedat4, write_atis_bin  # noqa: E402  (test helpers: the suite only reads events)


def _events(n: int, sensor: tuple[int, int], seed: int, duration_us: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, sensor[0], n), rng.integers(0, sensor[1], n),
                       np.sort(rng.integers(0, duration_us, n)), rng.integers(0, 2, n))


def write_copies(root: Path, per_class: int) -> None:
    for d in range(10):
        for k in range(per_class):
            for split in ("Train", "Test"):
                write_atis_bin(root / "NMNIST" / split / str(d) / f"{k:05d}.bin",
                               _events(4_300, (34, 34), 100 * d + k, 300_000))
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    for c, name in enumerate(classes):
        for k in range(max(2, per_class // 4)):
            write_aedat4(root / "CIFAR10DVS" / name / f"cifar10_{name}_{k}.aedat4",
                         _events(150_000, (128, 128), 1000 * c + k, 1_300_000), (128, 128))


def rate(ds, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        ds[i]
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=20, help="N-MNIST files per class and split")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_copies(root, args.per_class)
        print(f"{'dataset':<12} {'samples':>7} {'raw /s':>9} {'fill /s':>9} {'cached /s':>10} {'speedup':>8}")
        for name in ("nmnist", "cifar10dvs", "digits-dvs"):
            ds = load_dataset(DataSpec(name), root, "train")
            n = min(len(ds), 200)
            raw = rate(EventFrames(ds.source, ds.config, cache_dir=None), n)
            fill = rate(ds, n)  # first epoch: computes and writes the cache
            cached = rate(ds, n)  # second epoch: cache only
            print(f"{name:<12} {n:>7} {raw:>9.0f} {fill:>9.0f} {cached:>10.0f} {cached / raw:>7.0f}x")


if __name__ == "__main__":
    main()
