"""Event streams -> normalised frames [T, 2, S, S], cached on disk per sample.

Rule (FRAMES_VERSION 1), for a recording on a W x H sensor:
1. `tonic.transforms.ToFrame(n_time_bins=T)` counts events per time bin, polarity and pixel
   (the span from first to last event split into T equal windows; as in Tonic, events at the
   very last timestamp fall after the last window);
2. the counts are resized to S x S by area averaging (`F.interpolate(mode="area")`), so a value
   is a mean count per sensor pixel whatever the sensor size or S;
3. x = min(count, clip) / clip with a fixed clip (COUNT_CLIP = 4 events per pixel and bin).
Variants (`FRAME_RULES`, named by a DataSpec's `frames`, for models trained on other frames: a
model file states which): "count-..." bins by event count instead of time, as spikingjelly's
`split_by="number"` does (`cal_fixed_frames_number_segment_index`: T bins of N // T events in
time order, the last one taking the remainder; Tonic's n_event_bins drops the remainder, so it
is not used); "...-binary" takes 1 where a pixel saw an event in the bin, 0 elsewhere, before the
resize (spikingjelly's binary frames, as PDSG-SDA reads CIFAR10-DVS). The default is "time-clip".
A fixed clip, not a per-sample maximum, keeps the scale the same across samples: an attack
budget eps on event frames always means eps * clip events per pixel and bin, and one hot pixel
cannot dim a whole sample. Clipping at 4 loses little (most active pixels see 0-3 events per
bin) and stops flicker or hot pixels from dominating.

Cache: one .npy per sample under `<data root>/cache/<dataset>/<digest>/`, the digest covering
every parameter that changes frames (dataset, T, S, clip, rule version, and the source's own
parameters such as simulator settings); the folder's config.json records them and a folder
whose config.json disagrees is refused. Files are written atomically, so DataLoader workers
can fill the cache concurrently. Tonic's DiskCachedDataset is not used because it keys files
by sample index only and writes them in place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from suite.errors import SuiteError
from suite.files import atomic_path

FRAMES_VERSION = 1
COUNT_CLIP = 4.0
CACHE_FOLDER = "cache"


# frames name (DataSpec.frames) -> the rule's description in FrameConfig (part of the cache key;
# the default's is the text every cache before the variants was keyed with)
FRAME_RULES = {
    "time-clip": "tonic-toframe-time-bins/area-mean-count/clip",
    "time-binary": "tonic-toframe-time-bins/binary/area-mean",
    "count-clip": "event-count-bins-last-takes-rest/area-mean-count/clip",
    "count-binary": "event-count-bins-last-takes-rest/binary/area-mean",
}
DEFAULT_FRAMES = "time-clip"


@dataclass(frozen=True)
class FrameConfig:
    """What decides a sample's frames: T time bins, side S, count clip, rule version and rule."""

    timesteps: int
    size: int
    clip: float = COUNT_CLIP
    version: int = FRAMES_VERSION
    rule: str = FRAME_RULES[DEFAULT_FRAMES]

    def __post_init__(self):
        if self.timesteps < 1 or self.size < 1 or self.clip <= 0:
            raise SuiteError(f"frames need timesteps >= 1, size >= 1 and clip > 0, got {self}")
        if self.rule not in FRAME_RULES.values():
            raise SuiteError(f"unknown frame rule {self.rule!r}")

    @classmethod
    def of(cls, timesteps: int, size: int, frames: str | None = None) -> "FrameConfig":
        """The config of frames named `frames` (FRAME_RULES; None: the default)."""
        return cls(timesteps=timesteps, size=size, rule=FRAME_RULES[frames or DEFAULT_FRAMES])

    @property
    def by_count(self) -> bool:
        return self.rule.startswith("event-count")

    @property
    def binary(self) -> bool:
        return "/binary/" in self.rule


def count_bins(events: np.ndarray, sensor: tuple[int, int], timesteps: int) -> np.ndarray:
    """Counts [T, 2, H, W] with T bins of equal event count in time order, the last one taking
    the remainder (spikingjelly's split_by="number")."""
    width, height = sensor
    counts = np.zeros((timesteps, 2, height, width), np.float32)
    n = len(events)
    step = n // timesteps
    bins = np.minimum(np.arange(n) // max(step, 1), timesteps - 1) if step else np.full(n, timesteps - 1)
    np.add.at(counts, (bins, events["p"].astype(int), events["y"].astype(int), events["x"].astype(int)), 1)
    return counts


def events_to_frames(events: np.ndarray, sensor: tuple[int, int], config: FrameConfig) -> np.ndarray:
    """Frames float32 [T, 2, S, S] in [0, 1] of events on a (width, height) sensor (rule above)."""
    from tonic.transforms import ToFrame

    width, height = sensor
    if len(events) and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    if config.by_count:
        counts = count_bins(events, sensor, config.timesteps)
    elif len(events):
        to_frame = ToFrame(sensor_size=(width, height, 2), n_time_bins=config.timesteps)
        counts = to_frame(events).astype(np.float32)  # [T, 2, H, W]
    else:
        counts = np.zeros((config.timesteps, 2, height, width), np.float32)
    return counts_to_frames(torch.from_numpy(counts), config).numpy()


def counts_to_frames(counts: torch.Tensor, config: FrameConfig) -> torch.Tensor:
    """Steps 2-3 of the rule: float32 counts [..., T, 2, H, W] -> frames [..., T, 2, S, S]. The one
    implementation, for the pipeline and for attacks on event counts (differentiable in the
    counts except through the binary rule's step)."""
    x = (counts > 0).to(torch.float32) if config.binary else counts
    lead, (height, width) = x.shape[:-3], x.shape[-2:]
    if (height, width) != (config.size, config.size):
        x = F.interpolate(x.reshape(-1, 2, height, width), size=(config.size, config.size), mode="area")
        x = x.reshape(*lead, 2, config.size, config.size)  # [..., T, 2, S, S]
    if config.binary:
        return x
    return x.clamp(max=config.clip) / config.clip


class EventSource(Protocol):
    """Where a frame dataset's samples come from: a list of files or a simulator."""

    def __len__(self) -> int: ...
    def key(self, i: int) -> str: ...      # stable name of sample i, also its cache file name
    def label(self, i: int) -> int: ...
    def events(self, i: int) -> tuple[np.ndarray, tuple[int, int]]: ...  # (events, (W, H))


def frame_cache_dir(root: str | Path, dataset: str, config: FrameConfig, source_params: dict) -> Path:
    """The cache folder for one dataset and parameter set; creates it with its config.json,
    refuses one whose config.json records other parameters."""
    params = {"dataset": dataset, "frames": asdict(config), "source": source_params}
    text = json.dumps(params, sort_keys=True, default=str)
    folder = Path(root) / CACHE_FOLDER / dataset / hashlib.sha256(text.encode()).hexdigest()[:16]
    record = folder / "config.json"
    try:
        if record.is_file():
            if json.loads(record.read_text()) != json.loads(text):
                raise SuiteError(f"frame cache {folder} was built with other parameters than "
                                 f"{text}; delete the folder to rebuild it")
        else:
            with atomic_path(record) as tmp:
                tmp.write_text(text)
    except OSError as exc:
        raise SuiteError(f"cannot use frame cache folder {folder}: {exc.strerror or exc}") from None
    except json.JSONDecodeError:
        raise SuiteError(f"frame cache record {record} is corrupt; delete {folder} to rebuild it") from None
    return folder


class EventFrames(Dataset):
    """(frames float32 [T, 2, S, S], label) per sample of `source`, read from the cache when
    present, else computed from raw events and cached (`cache_dir=None`: never cached).
    `augment` flips frames left-right with probability 1/2 (after the cache)."""

    def __init__(self, source: EventSource, config: FrameConfig, cache_dir: Path | None,
                 augment: bool = False):
        self.source, self.config, self.cache_dir, self.augment = source, config, cache_dir, augment

    def __len__(self) -> int:
        return len(self.source)

    def key(self, i: int) -> str:
        return self.source.key(i)

    def source_index(self, i: int) -> int:
        """Index of sample i's static image in its source dataset (simulated datasets only)."""
        return self.source.source_index(i)

    def frames(self, i: int) -> np.ndarray:
        """Frames of sample i, from the cache when a valid file is there."""
        path = None if self.cache_dir is None else self.cache_dir / f"{self.source.key(i)}.npy"
        if path is not None:
            cached = _load_frames(path, (self.config.timesteps, 2, self.config.size, self.config.size))
            if cached is not None:
                return cached
        events, sensor = self.source.events(i)
        frames = events_to_frames(events, sensor, self.config)
        if path is not None:
            try:
                with atomic_path(path) as tmp, open(tmp, "wb") as f:
                    np.save(f, frames)
            except OSError as exc:
                raise SuiteError(f"cannot write frame cache file {path}: {exc.strerror or exc}") from None
        return frames

    def __getitem__(self, i: int):
        x = torch.from_numpy(self.frames(i))
        if self.augment and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, self.source.label(i)


def _load_frames(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """A cached frame array, or None when absent, unreadable or of another shape (rebuilt then)."""
    try:
        frames = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if frames.shape != shape or frames.dtype != np.float32:
        return None
    return frames


def cache_bytes(root: str | Path, dataset: str) -> int:
    """Total size of a dataset's frame caches under the data root."""
    folder = Path(root) / CACHE_FOLDER / dataset
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
