"""The event threat model (`--threat events`): an adversarial example is an event stream, the clean
recording with events added and removed (or moved between time bins), and the model sees that
stream's frames, made by the pipeline that made the clean ones (suite.data.frames).

The attacks work on a recording's event counts C [T, 2, H, W] at the sensor's resolution, binned
as the pipeline bins them: Tonic's ToFrame with T time bins, window w = (t_last - t_first) // T,
bin b holding t_first + b w <= t < t_first + (b + 1) w (events past the last window, such as the
last event when the span divides evenly, fall in no bin). A change of the counts is realised as
events (`Recording.realise`) so that re-binning the new stream gives exactly those counts:
- the span is kept: no event at the first or last timestamp is removed, and added events lie
  within it, so every window stays where it was;
- an added event takes the cell's pixel and polarity and a timestamp drawn uniformly from its
  bin's window (a bin whose window is empty inside the span takes none);
- a removed event is one of the cell's events outside the kept ends, drawn at random;
- a moved event (retiming) keeps its offset within its window in the new bin (redrawn within
  the span if that offset would leave it).
Every realised recording is checked (`check_recording`): inside the sensor, polarities 0/1,
timestamps within the clean span, sorted, the same counts as the change it realises, the change
within the budget. The round-trip rule: the stored frames are `events_to_frames` of the stored
recording, bit for bit (`counts_to_frames` is that function's own second half).

Budgets count events per sample: added plus removed (`--events`), or moved for retiming. Only
time-binned frames can be attacked this way: binning by event count moves every window when an
event is added or removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from suite.data.events import EVENT_DTYPE
from suite.data.frames import FrameConfig, counts_to_frames, events_to_frames
from suite.errors import SuiteError
from suite.results.attacks import EventChange as Change


def time_windows(t: np.ndarray, timesteps: int) -> tuple[int, int]:
    """(t_first, w) of Tonic's time bins for sorted timestamps `t` (w = 0: every bin is empty)."""
    if len(t) == 0:
        return 0, 0
    return int(t[0]), int((int(t[-1]) - int(t[0])) // timesteps)


def bins_of(t: np.ndarray, t0: int, w: int, timesteps: int) -> np.ndarray:
    """The time bin of each timestamp, -1 where it falls in none."""
    if w <= 0:
        return np.full(len(t), -1, dtype=np.int64)
    b = (t.astype(np.int64) - t0) // w
    return np.where((b >= 0) & (b < timesteps), b, -1)


def counts_of(events: np.ndarray, sensor: tuple[int, int], timesteps: int) -> np.ndarray:
    """Counts [T, 2, H, W] int64 of sorted events, binned as Tonic's ToFrame(n_time_bins=T) bins them."""
    t0, w = time_windows(events["t"], timesteps)
    b = bins_of(events["t"], t0, w, timesteps)
    return _count(events, b, b >= 0, sensor, timesteps)


def _count(events: np.ndarray, bins: np.ndarray, mask: np.ndarray, sensor: tuple[int, int],
           timesteps: int) -> np.ndarray:
    """Counts [T, 2, H, W] int64 of the events where `mask` holds, in their `bins`."""
    width, height = sensor
    counts = np.zeros((timesteps, 2, height, width), dtype=np.int64)
    np.add.at(counts, (bins[mask], events["p"][mask].astype(int), events["y"][mask].astype(int),
                       events["x"][mask].astype(int)), 1)
    return counts


def check_time_binned(config: FrameConfig) -> None:
    """Only time-binned frames can be attacked as event streams (module docstring)."""
    if config.by_count:
        raise SuiteError("the event threat model needs time-binned frames: binning by event count moves "
                         "every bin when an event is added or removed")


@dataclass
class Recording:
    """One clean recording and what the threat model lets an attack do to it."""

    events: np.ndarray  # EVENT_DTYPE, sorted by t
    sensor: tuple[int, int]  # (width, height)
    config: FrameConfig

    def __post_init__(self) -> None:
        check_time_binned(self.config)
        ev = self.events
        if len(ev) and np.any(np.diff(ev["t"]) < 0):
            self.events = ev = ev[np.argsort(ev["t"], kind="stable")]
        T = self.config.timesteps
        self.t0, self.w = time_windows(ev["t"], T)
        self.t_last = int(ev["t"][-1]) if len(ev) else 0
        self.bins = bins_of(ev["t"], self.t0, self.w, T)
        self.counts = _count(ev, self.bins, self.bins >= 0, self.sensor, T)
        kept_ends = (ev["t"] == self.t0) | (ev["t"] == self.t_last)
        self.removable_event = (self.bins >= 0) & ~kept_ends
        self.removable = _count(ev, self.bins, self.removable_event, self.sensor, T)
        starts = self.t0 + np.arange(T) * self.w
        ends = np.minimum(starts + self.w, self.t_last + 1)
        self.windows = np.stack([starts, ends], axis=1)  # [T, 2]: [start, end) inside the span
        self.addable = (self.w > 0) & (ends > starts)  # [T]

    def frames(self, events: np.ndarray | None = None) -> np.ndarray:
        """The pipeline's frames [T, 2, S, S] of this recording (or of `events` on its sensor)."""
        return events_to_frames(self.events if events is None else events, self.sensor, self.config)

    def _cell_events(self, removable: np.ndarray, b: int, p: int, y: int, x: int) -> np.ndarray:
        ev = self.events
        return np.flatnonzero(removable & (self.bins == b) & (ev["p"] == p) & (ev["y"] == y) & (ev["x"] == x))

    def realise(self, delta: np.ndarray, rng: np.random.Generator) -> "Change":
        """`delta` [T, 2, H, W] (integers) applied as events. SuiteError where the change is not
        within the threat model."""
        delta = np.asarray(delta, dtype=np.int64)
        if np.any(delta < -self.removable):
            raise SuiteError("a change removes more events than a cell has outside the recording's ends")
        if np.any((delta > 0) & ~self.addable[:, None, None, None]):
            raise SuiteError("a change adds events to a time bin with no room inside the recording's span")
        removable = self.removable_event.copy()
        drop = []
        for b, p, y, x in zip(*np.nonzero(delta < 0)):
            pick = rng.choice(self._cell_events(removable, b, p, y, x), size=-int(delta[b, p, y, x]), replace=False)
            removable[pick] = False
            drop.extend(pick.tolist())
        cells = np.argwhere(delta > 0)
        reps = delta[delta > 0]
        added = np.zeros(int(reps.sum()), dtype=EVENT_DTYPE)
        if len(added):
            rows = np.repeat(cells, reps, axis=0)  # [n, 4]: b, p, y, x
            start, end = self.windows[rows[:, 0], 0], self.windows[rows[:, 0], 1]
            added["t"] = start + (rng.random(len(rows)) * (end - start)).astype(np.int64)
            added["p"], added["y"], added["x"] = rows[:, 1], rows[:, 2], rows[:, 3]
        return Change(np.array(sorted(drop), dtype=np.int64), added)

    def realise_moves(self, moves: np.ndarray, rng: np.random.Generator) -> "Change":
        """Events moved between bins: `moves` [m, 5] rows (from bin, to bin, p, y, x), one event
        each, as a Change whose removed events come back, retimed, among the added ones."""
        moves = np.asarray(moves, dtype=np.int64).reshape(-1, 5)
        removable = self.removable_event.copy()
        taken, retimed = [], np.zeros(len(moves), dtype=EVENT_DTYPE)
        for k, (b, to, p, y, x) in enumerate(moves):
            if not self.addable[to]:
                raise SuiteError("a move goes to a time bin with no room inside the recording's span")
            candidates = self._cell_events(removable, b, p, y, x)
            if len(candidates) == 0:
                raise SuiteError("a move takes an event from a cell that has none outside the recording's ends")
            i = int(rng.choice(candidates))
            removable[i] = False  # an event moves once
            retimed[k] = self.events[i]
            t = int(self.events["t"][i]) + int(to - b) * self.w
            start, end = self.windows[to]
            retimed["t"][k] = t if start <= t < end else int(start + rng.integers(0, end - start))
            taken.append(i)
        order = np.argsort(taken)
        return Change(np.array(taken, dtype=np.int64)[order], retimed[order], moved=len(moves))

    def apply(self, change: "Change") -> np.ndarray:
        """The adversarial recording (`Change.apply` on this one)."""
        return change.apply(self.events)


def check_recording(adv: np.ndarray, clean: Recording, counts: np.ndarray, budget: float, changed: int) -> None:
    """The rules every adversarial recording keeps (module docstring); SuiteError naming the broken one."""
    width, height = clean.sensor
    problems = []
    if adv.dtype != EVENT_DTYPE:
        problems.append(f"dtype {adv.dtype} is not the event dtype")
    elif len(adv):
        if adv["x"].min() < 0 or adv["x"].max() >= width or adv["y"].min() < 0 or adv["y"].max() >= height:
            problems.append(f"an event outside the {width}x{height} sensor")
        if not np.isin(adv["p"], (0, 1)).all():
            problems.append("a polarity other than 0 and 1")
        if np.any(np.diff(adv["t"]) < 0):
            problems.append("timestamps out of order")
        if len(clean.events) and (adv["t"][0] != clean.t0 or adv["t"][-1] != clean.t_last):
            problems.append("a timestamp outside the clean recording's span (or an end removed)")
    if not problems and not np.array_equal(counts_of(adv, clean.sensor, clean.config.timesteps), counts):
        problems.append("its counts are not the change it realises")
    if changed > budget:
        problems.append(f"{changed} events changed, over the budget of {budget:g}")
    if problems:
        raise SuiteError("an adversarial recording breaks the event threat model: " + "; ".join(problems))


def attack_frames(counts: Tensor, config: FrameConfig) -> Tensor:
    """Frames of float counts [B, T, 2, H, W] with a gradient in the counts: the pipeline's own
    (`counts_to_frames`), except that the binary rule's step passes its gradient straight
    through (its derivative is 0 almost everywhere)."""
    frames = counts_to_frames(counts, config)
    if not config.binary:
        return frames
    smooth = counts_to_frames(counts.clamp(min=0, max=1), FrameConfig(config.timesteps, config.size, clip=1.0))
    return smooth + (frames - smooth).detach()
