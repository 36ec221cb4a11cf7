"""Frames pinned to the documented rule, with hand-built event streams: a pixel's value is
min(count, 4) / 4 (docs/guide/data.md, suite.data.frames), counted per time bin and polarity, after
area resizing. Expected values are typed from that rule (0.25 per event up to 4 events), not
computed from the module's constants, so a changed clip fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from suite.data import DataSpec, load_dataset
from suite.data.event_datasets import NMNIST_FOLDER
from suite.data.events import make_events
from suite.data.frames import FrameConfig, events_to_frames
from tests.support.event_files import write_atis_bin
from tests.support.event_layouts import write_nmnist


def stream(pixels: dict[tuple[int, int, int, int], int], end: int = 1000) -> np.ndarray:
    """Events: `count` events at (x, y) of polarity p in time bin b of 2 bins over [0, end)
    for each (x, y, p, b) -> count; plus one event at t = end at (7, 7), which Tonic's bins
    leave out (they end before the last timestamp)."""
    xs, ys, ts, ps = [], [], [], []
    for (x, y, p, b), count in pixels.items():
        for k in range(count):
            xs.append(x), ys.append(y), ps.append(p)
            ts.append(b * end // 2 + 10 * k)  # inside bin b
    xs.append(7), ys.append(7), ps.append(1), ts.append(end)
    order = np.argsort(ts, kind="stable")
    return make_events(*(np.asarray(a)[order] for a in (xs, ys, ts, ps)))


# (x, y, polarity, bin) -> events there, and the value the rule gives: min(count, 4) / 4
COUNTS = {(1, 0, 1, 0): 1, (2, 0, 1, 0): 2, (3, 0, 1, 0): 3, (4, 0, 1, 0): 4, (5, 0, 1, 0): 5,
          (6, 0, 1, 0): 9, (1, 1, 0, 1): 3, (2, 1, 0, 1): 6, (3, 2, 1, 1): 1}
VALUES = {(1, 0, 1, 0): 0.25, (2, 0, 1, 0): 0.5, (3, 0, 1, 0): 0.75, (4, 0, 1, 0): 1.0, (5, 0, 1, 0): 1.0,
          (6, 0, 1, 0): 1.0, (1, 1, 0, 1): 0.75, (2, 1, 0, 1): 1.0, (3, 2, 1, 1): 0.25}


def expected_frames() -> np.ndarray:
    out = np.zeros((2, 2, 8, 8), np.float32)  # [T, polarity, y, x]
    for (x, y, p, b), value in VALUES.items():
        out[b, p, y, x] = value
    return out


def test_each_event_adds_a_quarter_up_to_four():
    frames = events_to_frames(stream(COUNTS), (8, 8), FrameConfig(timesteps=2, size=8))
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames, expected_frames())


def test_counts_are_averaged_over_the_area_before_the_clip():
    """A 16x16 sensor to 8x8 frames: each frame pixel is the mean count of a 2x2 block, then
    min(mean, 4) / 4. 8 events on one sensor pixel of a block: mean 2 -> 0.5 (clipping first
    would give min(8, 4) / 4 = 1 -> mean 0.25). 6 + 6 + 6 + 6: mean 6 -> 1.0. 3 + 1: mean 1 -> 0.25."""
    counts = {(0, 0, 1, 0): 8, (2, 0, 1, 0): 6, (3, 0, 1, 0): 6, (2, 1, 1, 0): 6, (3, 1, 1, 0): 6,
              (4, 2, 0, 0): 3, (5, 3, 0, 0): 1}
    frames = events_to_frames(stream(counts, end=1000), (16, 16), FrameConfig(timesteps=2, size=8))
    assert frames.shape == (2, 2, 8, 8)
    assert frames[0, 1, 0, 0] == 0.5
    assert frames[0, 1, 0, 1] == 1.0
    assert frames[0, 0, 1, 2] == 0.25
    assert np.count_nonzero(frames) == 3


def test_dataset_frames_follow_the_rule(tmp_path):
    """Through the registry (N-MNIST layout, 34x34 sensor, S = 34, T = 2): the frames a model
    trains on use the same 4-event clip."""
    write_nmnist(tmp_path, per_class=1, n_events=20)
    pixels = {(x + 20, y + 20, p, b): n for (x, y, p, b), n in COUNTS.items()}
    write_atis_bin(tmp_path / NMNIST_FOLDER / "Test" / "0" / "00000.bin", stream(pixels))
    ds = load_dataset(DataSpec("nmnist", timesteps=2), tmp_path, "test")
    (i,) = [i for i in range(len(ds)) if ds.key(i) == "Test/0/00000"]
    frames = ds[i][0].numpy()
    expected = np.zeros((2, 2, 34, 34), np.float32)
    expected[:, :, 20:28, 20:28] = expected_frames()
    np.testing.assert_array_equal(frames, expected)


@pytest.mark.parametrize("count, value", [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0), (7, 1.0)])
def test_one_pixel_one_bin(count, value):
    pixels = {(2, 3, 1, 0): count} if count else {}
    frames = events_to_frames(stream(pixels), (8, 8), FrameConfig(timesteps=2, size=8))
    assert frames[0, 1, 3, 2] == value
