"""Event datasets in the registry: CIFAR10-DVS, N-MNIST, N-Caltech101 (Tonic) and simulated twins.

Files are found by globbing Tonic's folder layouts under the data root and read with Tonic's
readers (through `suite.data.events`). Tonic's dataset classes are used only to download:
constructed on a partial copy they would start a download (they insist on the full file
count), so a missing class folder gives the registry's missing-data message instead.

| name         | layout under the data root                   | sensor          | split                        | T  | S  |
| cifar10dvs   | CIFAR10DVS/<class>/*.aedat4                  | 128x128         | seeded 9:1 per class         | 10 | 48 |
| nmnist       | NMNIST/{Train,Test}/<digit>/*.bin            | 34x34           | official Train / Test        | 8  | 34 |
| ncaltech101  | NCALTECH101/Caltech101/<class>/*.bin         | per recording   | seeded 9:1 per class         | 8  | 64 |
| <static>-dvs | the static dataset's files                   | the image size  | the static dataset's split   | 8  | static size |

N-Caltech101 recordings are shifted to start at x = y = 0 and their sensor is their own
extent (as Tonic does), then stretched to S x S like Caltech101 images are resized to S x S.
Simulated twins: sample i is `simulate_saccades` of sample i of the static dataset with the
same size, seed and split (grey levels, luminance-weighted for colour), so `source_index(i) == i`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from suite.data.download import guarded_download
from suite.data.events import read_aedat4, read_atis_bin
from suite.data.frames import EventFrames, FrameConfig, frame_cache_dir
from suite.data.registry import (UNCHANGED, DataSpec, DatasetInfo, Reader, get_dataset_info, list_datasets,
                                 load_dataset, register)
from suite.data import simulate
from suite.data.simulate import simulate_saccades
from suite.data.splits import class_split
from suite.data.static import CALTECH101_FOLDERS


CIFAR10DVS_FOLDER = "CIFAR10DVS"
CIFAR10DVS_SENSOR = (128, 128)
CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
NMNIST_FOLDER = "NMNIST"
NMNIST_SENSOR = (34, 34)
NMNIST_CLASSES = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
                  "7 - seven", "8 - eight", "9 - nine")
NCALTECH101_FOLDER = "NCALTECH101"
NCALTECH101_SENSOR = (304, 240)  # the ATIS sensor; recordings use part of it
NCALTECH101_CLASSES = tuple(c for c in CALTECH101_FOLDERS if c != "Faces")  # Faces_easy kept


# ----------------------------------------------------------------------------- sources
class FileEvents:
    """Samples read from event files; key = path under the dataset folder, without suffix."""

    def __init__(self, files: list[Path], base: Path, labels: list[int], reader):
        self.files, self.base, self.labels, self.reader = files, base, labels, reader

    def __len__(self) -> int:
        return len(self.files)

    def key(self, i: int) -> str:
        return self.files[i].relative_to(self.base).with_suffix("").as_posix()

    def label(self, i: int) -> int:
        return self.labels[i]

    def events(self, i: int) -> tuple[np.ndarray, tuple[int, int]]:
        return self.reader(self.files[i])


def _fixed_sensor(path: Path, read, sensor: tuple[int, int]):
    return read(path, sensor), sensor


def _ncaltech101_events(path: Path):
    events = read_atis_bin(path, NCALTECH101_SENSOR)
    events["x"] -= events["x"].min()
    events["y"] -= events["y"].min()
    return events, (int(events["x"].max()) + 1, int(events["y"].max()) + 1)


def _class_files(base: Path, classes: tuple[str, ...], pattern: str) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for label, c in enumerate(classes):
        found = sorted((base / c).glob(pattern))
        files += found
        labels += [label] * len(found)
    return files, labels


def _missing(folder: str, sub: str, classes: tuple[str, ...], pattern: str):
    """missing(root): the class folders (relative to the dataset folder) with no files."""
    def missing(root: Path) -> list[str]:
        base = Path(root) / folder / sub
        return [f"{sub}/{c}/{pattern}".lstrip("/") for c in classes if not any((base / c).glob(pattern))]
    return missing


def _raw_files(folder: str, pattern: str, read: Callable[[Path], object]):
    """raw_files(root): every file matching `pattern` under the dataset folder, with its reader."""
    def raw_files(root: Path) -> list[tuple[Path, Reader]]:
        return [(p, read) for p in sorted((Path(root) / folder).glob(pattern))]
    return raw_files


def _frames(spec: DataSpec, root: Path, source, augment: bool, params: dict) -> EventFrames:
    config = FrameConfig.of(spec.timesteps, spec.size, spec.frames)
    return EventFrames(source, config, frame_cache_dir(root, spec.name, config, params), augment)


# ----------------------------------------------------------------------------- downloads
# Tonic's own downloaders (its URLs and checksums), run through guarded_download.
def _download_cifar10dvs(root: Path) -> None:
    from tonic.datasets import CIFAR10DVS
    guarded_download("cifar10dvs", CIFAR10DVS, root)


def _download_nmnist(root: Path) -> None:
    from tonic.datasets import NMNIST
    guarded_download("nmnist", lambda r: (NMNIST(r, train=True), NMNIST(r, train=False)), root)


def _download_ncaltech101(root: Path) -> None:
    from tonic.datasets import NCALTECH101
    from tonic.download_utils import extract_archive

    def make(r: str) -> None:
        try:
            NCALTECH101(r)
        except (OSError, RuntimeError):  # raised after download when the inner archive is not yet unpacked
            pass
        inner = Path(r) / NCALTECH101_FOLDER / NCALTECH101.data_filename
        if inner.is_file() and not (Path(r) / NCALTECH101_FOLDER / NCALTECH101.folder_name).is_dir():
            extract_archive(str(inner))
    guarded_download("ncaltech101", make, root)


# ----------------------------------------------------------------------------- builders
def build_cifar10dvs(spec: DataSpec, root: Path, split: str, augment: bool) -> Dataset:
    """CIFAR10-DVS frames; split: seeded 9:1 per class (`class_split`, no official split)."""
    base = root / CIFAR10DVS_FOLDER
    files, labels = _class_files(base, CIFAR10DVS_CLASSES, "*.aedat4")
    names = [f.relative_to(base).with_suffix("").as_posix() for f in files]
    keep = class_split(names, [CIFAR10DVS_CLASSES[y] for y in labels], split, spec.seed)
    reader = partial(_fixed_sensor, read=read_aedat4, sensor=CIFAR10DVS_SENSOR)
    source = FileEvents([files[i] for i in keep], base, [labels[i] for i in keep], reader)
    return _frames(spec, root, source, augment, {"reader": "aedat4", "sensor": CIFAR10DVS_SENSOR})


def build_nmnist(spec: DataSpec, root: Path, split: str, augment: bool) -> Dataset:
    """N-MNIST frames; the official Train / Test split."""
    base = root / NMNIST_FOLDER
    digits = tuple(str(d) for d in range(10))
    files, labels = _class_files(base / ("Train" if split == "train" else "Test"), digits, "*.bin")
    reader = partial(_fixed_sensor, read=read_atis_bin, sensor=NMNIST_SENSOR)
    source = FileEvents(files, base, labels, reader)
    return _frames(spec, root, source, augment, {"reader": "atis", "sensor": NMNIST_SENSOR})


def build_ncaltech101(spec: DataSpec, root: Path, split: str, augment: bool) -> Dataset:
    """N-Caltech101 frames; split: seeded 9:1 per class, the same as caltech101's (`class_split`)."""
    base = root / NCALTECH101_FOLDER / "Caltech101"
    files, labels = _class_files(base, NCALTECH101_CLASSES, "*.bin")
    names = [f.relative_to(base).with_suffix("").as_posix() for f in files]
    keep = class_split(names, [NCALTECH101_CLASSES[y] for y in labels], split, spec.seed)
    source = FileEvents([files[i] for i in keep], base, [labels[i] for i in keep], _ncaltech101_events)
    return _frames(spec, root, source, augment, {"reader": "atis", "sensor": "per-recording extent"})


register(DatasetInfo(
    name="cifar10dvs", kind="event", channels=2, size=48, classes=CIFAR10DVS_CLASSES,
    folder=CIFAR10DVS_FOLDER, source="https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671",
    build=build_cifar10dvs, missing=_missing(CIFAR10DVS_FOLDER, "", CIFAR10DVS_CLASSES, "*.aedat4"),
    download=_download_cifar10dvs, default_timesteps=10, normalisation=UNCHANGED,
    raw_files=_raw_files(CIFAR10DVS_FOLDER, "*/*.aedat4", partial(read_aedat4, sensor=CIFAR10DVS_SENSOR)),
))
register(DatasetInfo(
    name="nmnist", kind="event", channels=2, size=34, classes=NMNIST_CLASSES,
    folder=NMNIST_FOLDER, source="https://www.garrickorchard.com/datasets/n-mnist",
    build=build_nmnist,
    missing=lambda root: (_missing(NMNIST_FOLDER, "Train", tuple("0123456789"), "*.bin")(root)
                          + _missing(NMNIST_FOLDER, "Test", tuple("0123456789"), "*.bin")(root)),
    download=_download_nmnist, default_timesteps=8, normalisation=UNCHANGED,
    raw_files=_raw_files(NMNIST_FOLDER, "*/*/*.bin", partial(read_atis_bin, sensor=NMNIST_SENSOR)),
))
register(DatasetInfo(
    name="ncaltech101", kind="event", channels=2, size=64, classes=NCALTECH101_CLASSES,
    folder=NCALTECH101_FOLDER, source="https://www.garrickorchard.com/datasets/n-caltech101",
    build=build_ncaltech101,
    missing=_missing(NCALTECH101_FOLDER, "Caltech101", NCALTECH101_CLASSES, "*.bin"),
    download=_download_ncaltech101, default_timesteps=8, normalisation=UNCHANGED,
    raw_files=_raw_files(NCALTECH101_FOLDER, "Caltech101/*/*.bin",
                         partial(read_atis_bin, sensor=NCALTECH101_SENSOR)),
))


# ----------------------------------------------------------------------------- simulated twins
# The simulator's settings for every <static>-dvs dataset (its defaults; part of the frame-cache key)
SIMULATOR = {"threshold": simulate.THRESHOLD, "steps_per_saccade": simulate.STEPS_PER_SACCADE,
             "duration_us": simulate.DURATION_US, "amplitude": None, "noise_rate": 0.0,
             "log_eps": simulate.LOG_EPS}
# Grey level of a colour image: ITU-R BT.601 luma weights (R, G, B), those of PIL's convert("L")
LUMINANCE = (0.299, 0.587, 0.114)


def _labels(ds: Dataset) -> list[int]:
    """Labels of a static dataset without decoding its images where it keeps them aside."""
    if hasattr(ds, "targets"):  # torchvision datasets, Caltech101Images
        return [int(y) for y in ds.targets]
    if hasattr(ds, "tensors"):  # TensorDataset (digits)
        return [int(y) for y in ds.tensors[1]]
    return [int(ds[i][1]) for i in range(len(ds))]


class SimulatedEvents:
    """Samples simulated from a static dataset: sample i is image i seen through three saccades."""

    def __init__(self, static: Dataset, seed: int, split: str, simulator: dict):
        self.static, self.simulator = static, simulator
        self.labels = _labels(static)
        self.seed = (seed, 0 if split == "train" else 1)

    def __len__(self) -> int:
        return len(self.static)

    def key(self, i: int) -> str:
        return f"{i:06d}"

    def label(self, i: int) -> int:
        return self.labels[i]

    def source_index(self, i: int) -> int:
        return i

    def events(self, i: int) -> tuple[np.ndarray, tuple[int, int]]:
        x = self.static[i][0]  # [C, H, W] in [0, 1]
        grey = x[0] if x.shape[0] == 1 else torch.tensordot(torch.tensor(LUMINANCE), x[:3], 1)
        seed = int(np.random.SeedSequence([*self.seed, i]).generate_state(1)[0])
        events = simulate_saccades(grey.clamp(0, 1).numpy(), seed=seed, **self.simulator)
        return events, (grey.shape[1], grey.shape[0])


def _build_simulated(static_name: str):
    def build(spec: DataSpec, root: Path, split: str, augment: bool) -> Dataset:
        static_spec = DataSpec(static_name, size=spec.size, seed=spec.seed)
        static = load_dataset(static_spec, root, split, augment=False)
        source = SimulatedEvents(static, spec.seed, split, SIMULATOR)
        params = {"static": static_spec.to_dict(), "split": split, "simulator": SIMULATOR}
        return _frames(spec, root, source, augment, params)
    return build


def register_simulated(static_name: str) -> DatasetInfo:
    """Register `<static>-dvs`: the static dataset's images turned into saccade event streams."""
    static = get_dataset_info(static_name)
    return register(DatasetInfo(
        name=f"{static_name}-dvs", kind="event", channels=2, size=static.size, classes=static.classes,
        folder=static.folder, source=f"{static.source} (events simulated by the suite)",
        build=_build_simulated(static_name), missing=static.missing, download=static.download,
        offline=static.offline, default_timesteps=8, normalisation=UNCHANGED, raw_files=static.raw_files,
    ))


for _name in [n for n in list_datasets() if get_dataset_info(n).kind == "static"]:
    register_simulated(_name)
