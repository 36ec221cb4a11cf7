"""Paired static/event data checked sample by sample against the documented pairing rule
(docs/guide/cka.md "Static vs event", suite.data.paired):
- `digits` <-> `digits-dvs` by source index: event sample i is the recording of static sample i,
  so each pair's event frames are the simulator's recording of that pair's own image;
- `caltech101` <-> `ncaltech101` by file name: a pair's image and recording come from files
  with the same `<class>/image_000k` name, and every name present in both is paired.
Each pair is identified by its content (which sample it equals), not by the pairing module's
index lists, so a pair built from the wrong sample fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from suite.data import DataSpec, load_dataset
from suite.data.event_datasets import NCALTECH101_FOLDER, SIMULATOR
from suite.data.events import read_atis_bin
from suite.data.frames import FrameConfig, events_to_frames
from suite.data.paired import load_paired
from suite.errors import SuiteError
from suite.data.simulate import simulate_saccades
from tests.support.event_layouts import write_caltech101, write_ncaltech101


def test_each_digits_pair_holds_the_recording_of_its_own_image(tmp_path):
    """Every 29th pair (simulating all 450 costs ~10 s): any shift, reversal or mix-up of the
    pairing shows in these."""
    T, S = 2, 8
    paired = load_paired(DataSpec("digits", size=S), DataSpec("digits-dvs", size=S, timesteps=T), tmp_path, "test")
    static = load_dataset(DataSpec("digits", size=S), tmp_path, "test")
    images = torch.stack([static[i][0] for i in range(len(static))])  # [N, 1, S, S]
    labels = [int(static[i][1]) for i in range(len(static))]
    assert len(paired) == len(static)
    config = FrameConfig(timesteps=T, size=S)
    assert SIMULATOR["noise_rate"] == 0  # so the simulator's recording of an image is deterministic
    checked = list(range(0, len(paired), 29)) + [len(paired) - 1]  # 17 pairs spread over the split
    for k in checked:
        x_static, x_events, label = paired[k]
        # which static samples is this image? (a digit may occur twice in the split)
        (same,) = torch.nonzero((images == x_static).flatten(1).all(1), as_tuple=True)
        assert len(same) >= 1
        events = simulate_saccades(x_static[0].numpy(), **SIMULATOR)
        np.testing.assert_array_equal(x_events.numpy(), events_to_frames(events, (S, S), config),
                                      err_msg=f"pair {k}: event frames are not the recording of its image")
        assert label == labels[same[0]]


@pytest.mark.parametrize("split", ["train", "test"])
def test_each_caltech_pair_holds_an_image_and_a_recording_of_the_same_file_name(tmp_path, split):
    # 2 images and 3 recordings per class: image_0003 has no image, and the two datasets'
    # sample indices differ (a pair built from one side's index with the other's fails)
    write_caltech101(tmp_path, per_class=2)
    write_ncaltech101(tmp_path, per_class=3)
    spec_s, spec_e = DataSpec("caltech101", size=16), DataSpec("ncaltech101", size=16, timesteps=2)
    paired = load_paired(spec_s, spec_e, tmp_path, split)
    static = load_dataset(spec_s, tmp_path, split)
    events = load_dataset(spec_e, tmp_path, split)
    images = torch.stack([static[i][0] for i in range(len(static))])
    static_names = [static.key(i) for i in range(len(static))]
    event_names = [events.key(j) for j in range(len(events))]
    config = FrameConfig(timesteps=2, size=16)

    names = []
    for k in range(len(paired)):
        x_static, x_events, label = paired[k]
        (i,) = torch.nonzero((images == x_static).flatten(1).all(1), as_tuple=True)  # random images: unique
        name = static_names[int(i)]  # "<class>/image_000k", from the image's file
        # the recording file of that name, read and framed here
        raw = read_atis_bin(tmp_path / NCALTECH101_FOLDER / "Caltech101" / f"{name}.bin", (304, 240))
        raw["x"] -= raw["x"].min()
        raw["y"] -= raw["y"].min()
        sensor = (int(raw["x"].max()) + 1, int(raw["y"].max()) + 1)
        np.testing.assert_array_equal(x_events.numpy(), events_to_frames(raw, sensor, config),
                                      err_msg=f"pair {k}: the recording is not {name}.bin")
        assert label == int(static[int(i)][1])
        names.append(name)
    assert names and len(names) == len(set(names))
    assert set(names) == set(static_names) & set(event_names)  # every shared name, and only those
    assert not any(n.endswith("image_0003") or n.startswith("Faces/") for n in names)
    if split == "train":  # the layout tells the two index lists apart
        assert any(static_names.index(n) != event_names.index(n) for n in names)


def test_pairs_default_to_the_test_split(tmp_path):
    paired = load_paired(DataSpec("digits", size=8), DataSpec("digits-dvs", size=8, timesteps=2), tmp_path)
    test = load_dataset(DataSpec("digits", size=8), tmp_path, "test")
    assert len(paired) == len(test) == 450  # 25% of 1797; the train split has 1347
    x_static, _, label = paired[0]
    assert any(torch.equal(x_static, test[i][0]) for i in range(len(test)))


def test_caltech_without_shared_file_names_is_one_error(tmp_path):
    write_caltech101(tmp_path, per_class=1)  # image_0001 of every class
    for path in write_ncaltech101(tmp_path, per_class=1):
        path.rename(path.with_name("image_0009.bin"))  # recordings of other images only
    with pytest.raises(SuiteError, match=r"no train files of caltech101 and ncaltech101 under .* share a name"):
        load_paired(DataSpec("caltech101", size=8), DataSpec("ncaltech101", size=8), tmp_path, "train")
