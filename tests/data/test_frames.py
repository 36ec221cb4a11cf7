"""Events -> frames: the normalisation rule, and the disk cache keyed by every parameter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from suite.data import DataSpec, load_dataset
from suite.data.events import make_events
from suite.data.frames import COUNT_CLIP, FrameConfig, cache_bytes, events_to_frames
from suite.errors import SuiteError
from tests.support.event_layouts import write_nmnist


def test_frames_put_each_polarity_in_its_time_bin_and_pixel():
    # ON events at (x=3, y=5) early, OFF events at (x=10, y=2) late; T=2 bins over t 0..1000
    events = make_events([3, 3, 10, 0], [5, 5, 2, 0], [0, 100, 600, 1000], [1, 1, 0, 0])
    frames = events_to_frames(events, (16, 16), FrameConfig(timesteps=2, size=16))
    assert frames.shape == (2, 2, 16, 16) and frames.dtype == np.float32
    assert frames[0, 1, 5, 3] == pytest.approx(2 / COUNT_CLIP)
    assert frames[1, 0, 2, 10] == pytest.approx(1 / COUNT_CLIP)
    assert np.count_nonzero(frames) == 2  # Tonic's time bins end before the very last event


def test_counts_clip_at_a_fixed_value():
    events = make_events([1] * 9 + [2], [1] * 9 + [2], list(range(9)) + [100], [1] * 10)
    frames = events_to_frames(events, (4, 4), FrameConfig(timesteps=1, size=4, clip=4.0))
    assert frames[0, 1, 1, 1] == 1.0  # 9 events, clipped at 4
    assert frames.max() == 1.0 and frames.min() == 0.0


def test_area_resize_gives_mean_count_per_sensor_pixel():
    # 8 ON events spread over the 2x2 block at the origin of a 32x32 sensor -> 2 per sensor pixel
    xs, ys = [0, 1, 0, 1] * 2, [0, 0, 1, 1] * 2
    events = make_events(xs + [31], ys + [31], list(range(8)) + [1000], [1] * 9)
    frames = events_to_frames(events, (32, 32), FrameConfig(timesteps=1, size=16))
    assert frames.shape == (1, 2, 16, 16)
    assert frames[0, 1, 0, 0] == pytest.approx(2 / COUNT_CLIP)


def test_second_epoch_does_not_read_raw_events(tmp_path, monkeypatch):
    import tonic.io

    write_nmnist(tmp_path, per_class=1, n_events=50)
    ds = load_dataset(DataSpec("nmnist", timesteps=4), tmp_path, "train")
    calls = []
    original = tonic.io.read_mnist_file
    monkeypatch.setattr(tonic.io, "read_mnist_file", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = [ds[i][0] for i in range(len(ds))]
    assert len(calls) == len(ds)
    monkeypatch.setattr(tonic.io, "read_mnist_file", lambda *a, **k: pytest.fail("raw events read again"))
    again = load_dataset(DataSpec("nmnist", timesteps=4), tmp_path, "train")  # a new epoch, a new process
    assert all(torch.equal(a, again[i][0]) for i, a in enumerate(first))
    assert cache_bytes(tmp_path, "nmnist") > 0


def test_simulated_second_epoch_does_not_simulate_again(tmp_path, monkeypatch):
    import suite.data.event_datasets as ev

    ds = load_dataset(DataSpec("digits-dvs", size=8), tmp_path, "test")
    first = [ds[i][0] for i in range(5)]
    monkeypatch.setattr(ev, "simulate_saccades", lambda *a, **k: pytest.fail("simulated again"))
    assert all(torch.equal(a, ds[i][0]) for i, a in enumerate(first))


def test_cache_built_with_other_parameters_is_not_reused(tmp_path):
    write_nmnist(tmp_path, per_class=1, n_events=300)
    short = load_dataset(DataSpec("nmnist", timesteps=2), tmp_path, "test")
    x2 = short[0][0]
    x4 = load_dataset(DataSpec("nmnist", timesteps=4), tmp_path, "test")[0][0]
    small = load_dataset(DataSpec("nmnist", timesteps=2, size=17), tmp_path, "test")[0][0]
    assert x2.shape == (2, 2, 34, 34) and x4.shape == (4, 2, 34, 34) and small.shape == (2, 2, 17, 17)
    folders = [p for p in (tmp_path / "cache" / "nmnist").iterdir()]
    assert len(folders) == 3
    records = [json.loads((p / "config.json").read_text()) for p in folders]
    assert sorted(r["frames"]["timesteps"] for r in records) == [2, 2, 4]


def test_cache_folder_recording_other_parameters_is_refused(tmp_path):
    write_nmnist(tmp_path, per_class=1, n_events=50)
    ds = load_dataset(DataSpec("nmnist"), tmp_path, "test")
    record = ds.cache_dir / "config.json"
    data = json.loads(record.read_text())
    data["frames"]["clip"] = 99.0
    record.write_text(json.dumps(data))
    with pytest.raises(SuiteError, match="built with other parameters"):
        load_dataset(DataSpec("nmnist"), tmp_path, "test")


def test_corrupt_or_wrong_shape_cache_file_is_rebuilt(tmp_path):
    write_nmnist(tmp_path, per_class=1, n_events=300)
    ds = load_dataset(DataSpec("nmnist"), tmp_path, "test")
    good0, good1 = ds[0][0], ds[1][0]
    (ds.cache_dir / f"{ds.key(0)}.npy").write_bytes(b"\x93NUMPY garbage")
    with open(ds.cache_dir / f"{ds.key(1)}.npy", "wb") as f:
        np.save(f, np.zeros((3, 2, 34, 34), np.float32))
    assert torch.equal(ds[0][0], good0) and torch.equal(ds[1][0], good1)


def test_cached_frames_equal_fresh_frames(tmp_path):
    write_nmnist(tmp_path, per_class=1, n_events=300)
    ds = load_dataset(DataSpec("nmnist"), tmp_path, "test")
    ds[2]
    events, sensor = ds.source.events(2)
    assert np.array_equal(ds[2][0].numpy(), events_to_frames(events, sensor, ds.config))


class OneRecording:
    """An EventSource of n copies of one recording on a 4x4 sensor: events only in column 0."""

    def __init__(self, n: int = 1):
        self.n = n

    def __len__(self):
        return self.n

    def key(self, i):
        return f"class0/rec{i}"

    def label(self, i):
        return 7

    def events(self, i):
        return make_events([0, 0, 0], [1, 2, 3], [0, 50, 100], [1, 1, 0]), (4, 4)


def test_frames_without_a_cache_folder_are_computed_each_time():
    from suite.data.frames import EventFrames
    data = EventFrames(OneRecording(), FrameConfig(timesteps=1, size=4), cache_dir=None)
    x, label = data[0]
    assert label == 7 and x.shape == (1, 2, 4, 4)
    assert torch.equal(x[0, 1, 1:3, 0], torch.tensor([0.25, 0.25]))  # one ON event each of 4


def test_augment_flips_left_right_about_half_the_time():
    """Events sit in column 0 (x = 0); a flip moves them to column 3. 200 draws: each way with
    probability 1/2, so both are seen and each count is within 100 +- 40 (p < 1e-7 otherwise)."""
    from suite.data.frames import EventFrames
    data = EventFrames(OneRecording(), FrameConfig(timesteps=1, size=4), cache_dir=None, augment=True)
    plain = EventFrames(OneRecording(), FrameConfig(timesteps=1, size=4), cache_dir=None)[0][0]
    torch.manual_seed(0)
    flipped = 0
    for _ in range(200):
        x = data[0][0]
        if torch.equal(x, plain):
            continue
        assert torch.equal(x, plain.flip(-1)) and x[..., 3].sum() > 0  # mirrored in x only
        flipped += 1
    assert 60 <= flipped <= 140


def test_unwritable_cache_file_is_an_error_naming_it(tmp_path):
    from suite.data.frames import EventFrames
    (tmp_path / "class0" / "rec0.npy").mkdir(parents=True)  # a folder where the file should go
    data = EventFrames(OneRecording(), FrameConfig(timesteps=1, size=4), cache_dir=tmp_path)
    with pytest.raises(SuiteError, match=r"cannot write \S+rec0\.npy: it is a folder$"):
        data[0]


def test_cache_size_of_a_dataset_never_cached_is_zero(tmp_path):
    assert cache_bytes(tmp_path, "nmnist") == 0


def test_unsorted_events_are_binned_as_if_sorted():
    # ON at (x=1, y=0) at t=0 and t=100, OFF at (x=2, y=3) at t=900; T=2 bins over t 0..1000,
    # handed over in reverse time order (the last event, at t=1000, falls after the last bin)
    events = make_events([0, 2, 1, 1], [0, 3, 0, 0], [1000, 900, 100, 0], [0, 0, 1, 1])
    frames = events_to_frames(events, (4, 4), FrameConfig(timesteps=2, size=4))
    expected = np.zeros((2, 2, 4, 4), np.float32)
    expected[0, 1, 0, 1] = 2 / COUNT_CLIP
    expected[1, 0, 3, 2] = 1 / COUNT_CLIP
    assert np.array_equal(frames, expected)


def test_no_events_give_zero_frames_of_the_usual_shape_and_type():
    frames = events_to_frames(make_events([], [], [], []), (6, 6), FrameConfig(timesteps=3, size=4))
    assert frames.shape == (3, 2, 4, 4) and frames.dtype == np.float32 and not frames.any()


@pytest.mark.parametrize("kw", [dict(timesteps=0), dict(size=0), dict(clip=0.0), dict(clip=-1.0)])
def test_frame_config_refuses_each_bad_value_alone(kw):
    with pytest.raises(SuiteError, match="frames need timesteps >= 1, size >= 1 and clip > 0"):
        FrameConfig(**{**dict(timesteps=1, size=1, clip=0.5), **kw})


def test_frame_config_accepts_the_smallest_values():
    assert FrameConfig(timesteps=1, size=1, clip=0.5).size == 1


def test_frames_are_not_flipped_unless_asked():
    from suite.data.frames import EventFrames
    data = EventFrames(OneRecording(), FrameConfig(timesteps=1, size=4), cache_dir=None)
    torch.manual_seed(0)
    assert all(data[0][0][..., 0].sum() > 0 for _ in range(20))  # events stay in column 0


def test_cache_folder_ignores_parameter_order_and_takes_paths(tmp_path):
    from pathlib import Path

    from suite.data.frames import frame_cache_dir
    cfg = FrameConfig(timesteps=2, size=4)
    a = frame_cache_dir(tmp_path, "sim", cfg, {"rate": 1, "path": Path("/x/y"), "seed": 3})
    b = frame_cache_dir(tmp_path, "sim", cfg, {"seed": 3, "path": Path("/x/y"), "rate": 1})
    assert a == b and a.parent == tmp_path / "cache" / "sim"
    assert json.loads((a / "config.json").read_text())["source"]["path"] == "/x/y"


def test_corrupt_cache_record_is_refused_naming_it(tmp_path):
    from suite.data.frames import frame_cache_dir
    cfg = FrameConfig(timesteps=2, size=4)
    folder = frame_cache_dir(tmp_path, "sim", cfg, {})
    (folder / "config.json").write_text("{not json")
    with pytest.raises(SuiteError, match=r"frame cache record \S+config\.json is corrupt; delete \S+ to rebuild it"):
        frame_cache_dir(tmp_path, "sim", cfg, {})


def test_unusable_cache_folder_is_one_error_in_words(tmp_path):
    from suite.data.frames import frame_cache_dir
    cfg = FrameConfig(timesteps=2, size=4)
    record = frame_cache_dir(tmp_path, "sim", cfg, {}) / "config.json"
    record.unlink()
    record.mkdir()  # a folder where the cache's record should be
    with pytest.raises(SuiteError, match=r"^cannot write \S+config\.json: it is a folder$"):
        frame_cache_dir(tmp_path, "sim", cfg, {})


class _MakesMarker:
    """Unpickling this runs os.mkdir(marker): a stand-in for code planted in a cache file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return os.mkdir, (self.marker,)


def test_a_pickle_in_the_frame_cache_is_never_run(tmp_path):
    """A cache file is data: one holding a pickled object is not unpickled (no code runs), it
    is rebuilt from the recording."""
    write_nmnist(tmp_path, per_class=1, n_events=300)
    ds = load_dataset(DataSpec("nmnist"), tmp_path, "test")
    fresh = ds[0][0]
    marker = tmp_path / "pickle-ran"
    with open(ds.cache_dir / f"{ds.key(0)}.npy", "wb") as f:
        np.save(f, np.array([_MakesMarker(marker)], dtype=object), allow_pickle=True)
    assert torch.equal(ds[0][0], fresh)
    assert not marker.exists()
