"""Frames for models trained on other frames (a model file's `frames`, suite.data.frames.FRAME_RULES):
binning by event count as spikingjelly's split_by="number" (checked against spikingjelly's own
integrate_events_by_fixed_frames_number), binary frames, and the default's cache key unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from suite.data import DataSpec
from suite.data.frames import FRAME_RULES, FrameConfig, count_bins, events_to_frames
from suite.errors import SuiteError

EVENT = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])


def recording(n: int, seed: int = 0, side: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT)
    ev["x"], ev["y"] = rng.integers(0, side, n), rng.integers(0, side, n)
    ev["t"] = np.sort(rng.integers(0, 10_000, n))
    ev["p"] = rng.integers(0, 2, n)
    return ev


@pytest.mark.parametrize("n, T", [(103, 4), (12, 5), (3, 4)])  # a remainder, an even split, fewer events than bins
def test_count_bins_are_spikingjellys_split_by_number(n, T):
    sj_datasets = pytest.importorskip("spikingjelly.datasets", reason="spikingjelly is in the test extra")
    ev = recording(n)
    ref = sj_datasets.integrate_events_by_fixed_frames_number(
        {k: ev[k].astype(np.int64) for k in ("t", "x", "y", "p")}, "number", T, 6, 6)  # [T, 2, H, W]
    np.testing.assert_array_equal(count_bins(ev, (6, 6), T), ref)


def test_count_frames_and_binary_frames_follow_their_rule():
    ev = recording(500, seed=1, side=8)
    counts = torch.from_numpy(count_bins(ev, (8, 8), 3))
    by_count = events_to_frames(ev, (8, 8), FrameConfig.of(3, 4, "count-clip"))
    expected = (F.interpolate(counts, size=(4, 4), mode="area").clamp(max=4) / 4).numpy()
    np.testing.assert_array_equal(by_count, expected)  # the same float32 operations in the same order
    binary = events_to_frames(ev, (8, 8), FrameConfig.of(3, 4, "count-binary"))
    np.testing.assert_array_equal(binary, F.interpolate((counts > 0).float(), size=(4, 4), mode="area").numpy())
    assert set(np.unique(events_to_frames(ev, (8, 8), FrameConfig.of(3, 8, "time-binary")))) <= {0.0, 1.0}


def test_the_default_frames_keep_their_cache_key_and_specs_name_their_frames():
    assert FrameConfig(timesteps=4, size=16) == FrameConfig.of(4, 16) == FrameConfig.of(4, 16, "time-clip")
    assert FrameConfig.of(4, 16).rule == "tonic-toframe-time-bins/area-mean-count/clip"  # the key caches were built with
    assert DataSpec("digits-dvs").frames == "time-clip" and DataSpec("digits").frames is None
    assert DataSpec.from_dict({"name": "digits-dvs", "size": 16, "timesteps": 8}).frames == "time-clip"  # older files
    assert DataSpec("digits-dvs", frames="count-binary") != DataSpec("digits-dvs")
    with pytest.raises(SuiteError, match="unknown frames 'by-volume'"):
        DataSpec("digits-dvs", frames="by-volume")
    assert sorted(FRAME_RULES) == ["count-binary", "count-clip", "time-binary", "time-clip"]
