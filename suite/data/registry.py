"""Dataset registry: one entry per dataset name, looked up by `get_dataset_info` / `load_dataset`.

An entry says what a dataset is (kind, input shape, classes), which files it expects under
the data root, where to obtain them, and how to build a torch Dataset of `(x, label)` with
`x` float32 in [0, 1]: static images [C, H, W], event frames [T, 2, H, W].
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from suite.errors import SuiteError
from suite.data.frames import DEFAULT_FRAMES, FRAME_RULES
from suite.values import MAX_TIMESTEPS, check_choice, check_whole

Reader = Callable[[Path], object]
# What the model does to its [0, 1] input, (mean, std) per channel, inside the model so that
# attacks work in input units: MIDRANGE maps [0, 1] to [-1, 1] (images without measured
# statistics); UNCHANGED leaves event frames (min(count, 4) / 4) as they are.
MIDRANGE = ((0.5,), (0.5,))
UNCHANGED = ((0.0,), (1.0,))
SHOW_MISSING = 5  # a missing-data message names this many files, then counts the rest
MIN_SIZE, MAX_SIZE = 4, 4096  # input side in pixels
MAX_SEED = 2**63 - 1  # torch.manual_seed's range


@dataclass(frozen=True)
class DataSpec:
    """Everything that decides what a dataset's samples look like; stored in checkpoints.

    `size` is the side of the square input, `channels` 1 or 3 for static images, `timesteps`
    the number of frame bins of event data. What is not given takes the dataset's default when
    the spec is built, so a spec is explicit (two specs of the same samples are equal).

    The one check of the data options (--dataset, --size, --seed). The frame bins of event
    data follow the model's T, which `ModelSpec` checks; stored specs are checked when read
    (`from_dict`).
    """

    name: str
    size: int | None = None
    channels: int | None = None
    timesteps: int | None = None
    seed: int = 0
    frames: str | None = None  # event data: how events become frames (suite.data.frames.FRAME_RULES)

    def __post_init__(self) -> None:
        info = get_dataset_info(self.name)  # an unknown name lists the known ones
        if self.size is not None:
            check_whole(self.size, "--size", MIN_SIZE, MAX_SIZE)
        if self.channels is not None:
            check_whole(self.channels, "input channels", 1, 3)
        check_whole(self.seed, "--seed", 0, MAX_SEED)
        object.__setattr__(self, "size", self.size or info.size)
        object.__setattr__(self, "channels", self.channels or info.channels)
        event = info.kind == "event"
        object.__setattr__(self, "timesteps", (self.timesteps or info.default_timesteps) if event else None)
        if self.frames is not None and not event:
            raise SuiteError(f"frames = {self.frames!r} applies to event data; {self.name} is static")
        if event:
            check_choice(self.frames or DEFAULT_FRAMES, "frames", FRAME_RULES)
            object.__setattr__(self, "frames", self.frames or DEFAULT_FRAMES)

    def to_dict(self) -> dict:
        return {"name": self.name, "size": self.size, "channels": self.channels,
                "timesteps": self.timesteps, "seed": self.seed, "frames": self.frames}

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        """A stored spec (checkpoints, results), its values checked like the options'."""
        if d.get("timesteps") is not None:
            check_whole(d["timesteps"], "stored frame bins (timesteps)", 1, MAX_TIMESTEPS)
        return cls(**{k: d.get(k) for k in ("name", "size", "channels", "timesteps", "frames")},
                   seed=d.get("seed", 0))


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry. `build(spec, root, split, augment)` returns a torch Dataset;
    `raw_files(root)` lists every raw file with the function that reads (and so checks) it."""

    name: str
    kind: str  # "static" or "event"
    channels: int
    size: int
    classes: tuple[str, ...]
    folder: str  # where under the data root its files live
    source: str  # where the data can be obtained
    build: Callable[[DataSpec, Path, str, bool], Dataset]
    missing: Callable[[Path], list[str]] = field(default=lambda root: [])
    download: Callable[[Path], None] | None = None
    offline: bool = False  # always available (embedded or simulated from embedded data)
    default_timesteps: int | None = None
    normalisation: tuple[tuple[float, ...], tuple[float, ...]] = MIDRANGE
    raw_files: Callable[[Path], list[tuple[Path, Reader]]] = field(default=lambda root: [])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry (names are unique)."""
    if info.name in _REGISTRY:
        raise ValueError(f"dataset {info.name!r} registered twice")
    _REGISTRY[info.name] = info
    return info


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered dataset names matching a shell-style pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_dataset_info(name: str) -> DatasetInfo:
    """The registry entry for `name`; an unknown name lists the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SuiteError(
            f"unknown dataset {name!r}; choose one of: {', '.join(list_datasets())}"
        ) from None


def require_files(info: DatasetInfo, root: Path) -> None:
    """Raise the one missing-data message: which files, where, and how to get them."""
    missing = info.missing(Path(root))
    if missing:
        shown = ", ".join(missing[:SHOW_MISSING]) + (
            f" and {len(missing) - SHOW_MISSING} more" if len(missing) > SHOW_MISSING else "")
        where = Path(root) / info.folder
        how = (f"run `suite data download {info.name}` or obtain it from {info.source}"
               if info.download is not None else f"obtain it from {info.source}")
        raise SuiteError(f"dataset {info.name} is missing {shown} under {where}; {how}")


def load_dataset(spec: DataSpec, root: str | Path, split: str = "train", augment: bool = False) -> Dataset:
    """Build the dataset `spec` for `split` ("train" or "test") from files under `root`."""
    if split not in ("train", "test"):
        raise SuiteError(f"unknown split {split!r}; choose train or test")
    info = get_dataset_info(spec.name)
    require_files(info, Path(root))
    return info.build(spec, Path(root), split, augment)
