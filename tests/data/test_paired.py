"""Paired static/event data: simulated twins by source index, Caltech101 by file name."""

from __future__ import annotations

import pytest
import torch

from suite.data import DataSpec, load_dataset
from suite.data.paired import load_paired
from suite.data.static import CALTECH101_CLASSES, CALTECH101_IMAGES
from suite.errors import SuiteError
from tests.support.event_layouts import write_caltech101, write_ncaltech101


def test_digits_pairs_with_its_simulated_twin(tmp_path):
    paired = load_paired(DataSpec("digits"), DataSpec("digits-dvs", timesteps=4), tmp_path, "test")
    static = load_dataset(DataSpec("digits"), tmp_path, "test")
    events = load_dataset(DataSpec("digits-dvs", timesteps=4), tmp_path, "test")
    assert len(paired) == len(static) == len(events)
    x_static, x_events, label = paired[11]
    assert torch.equal(x_static, static[11][0]) and torch.equal(x_events, events[11][0])
    assert x_static.shape == (1, 16, 16) and x_events.shape == (4, 2, 16, 16)
    assert label == int(static[11][1]) == events[11][1]


def test_twins_need_the_same_seed(tmp_path):
    with pytest.raises(SuiteError, match="same seed"):
        load_paired(DataSpec("digits", seed=0), DataSpec("digits-dvs", seed=1), tmp_path)


def test_unrelated_datasets_are_not_paired(tmp_path):
    with pytest.raises(SuiteError, match="not paired data.*caltech101/ncaltech101"):
        load_paired(DataSpec("digits"), DataSpec("nmnist"), tmp_path)


def test_caltech101_static_dataset_loads(tmp_path):
    write_caltech101(tmp_path, per_class=2)
    ds = load_dataset(DataSpec("caltech101", size=20), tmp_path, "train")
    assert len(ds) == 101  # 2 images per class, one of each goes to test
    x, y = ds[0]
    assert x.shape == (3, 20, 20) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert CALTECH101_CLASSES[y] == ds.key(0).split("/")[0]


def test_missing_caltech101_names_folders(tmp_path):
    with pytest.raises(SuiteError, match=r"caltech101 is missing 101_ObjectCategories/BACKGROUND_Google/\*\.jpg"):
        load_dataset(DataSpec("caltech101"), tmp_path)


def test_caltech101_pairs_with_ncaltech101_by_file_name(tmp_path):
    write_caltech101(tmp_path, per_class=3)
    write_ncaltech101(tmp_path, per_class=2)  # image_0003 has no recording
    paired = load_paired(DataSpec("caltech101", size=16), DataSpec("ncaltech101", size=16, timesteps=2),
                         tmp_path, "train")
    static, events = paired.static, paired.events
    assert len(paired) > 0
    for i, j in paired.pairs:
        assert static.key(i) == events.key(j)
        assert not static.key(i).endswith("image_0003")
    paired_classes = {static.key(i).split("/")[0] for i, _ in paired.pairs}
    assert "Faces" not in paired_classes and "BACKGROUND_Google" not in paired_classes
    x_static, x_events, label = paired[0]
    assert x_static.shape == (3, 16, 16) and x_events.shape == (2, 2, 16, 16)
    assert CALTECH101_CLASSES[label] == static.key(paired.pairs[0][0]).split("/")[0]


def test_caltech_and_ncaltech_split_the_same_names_alike(tmp_path):
    write_caltech101(tmp_path, per_class=4)
    write_ncaltech101(tmp_path, per_class=4)
    for split in ("train", "test"):
        static = load_dataset(DataSpec("caltech101", size=8), tmp_path, split)
        events = load_dataset(DataSpec("ncaltech101", size=8), tmp_path, split)
        static_keys = {static.key(i) for i in range(len(static))}
        event_keys = {events.key(j) for j in range(len(events))}
        shared_classes = {k.split("/")[0] for k in static_keys} & {k.split("/")[0] for k in event_keys}
        assert {k for k in static_keys if k.split("/")[0] in shared_classes} == \
               {k for k in event_keys if k.split("/")[0] in shared_classes}


def test_corrupt_caltech_image_names_file(tmp_path):
    paths = write_caltech101(tmp_path, per_class=2)
    ds = load_dataset(DataSpec("caltech101"), tmp_path, "test")
    target = tmp_path / CALTECH101_IMAGES / f"{ds.key(0)}.jpg"
    target.write_bytes(b"not a jpeg")
    with pytest.raises(SuiteError, match=f"{ds.key(0)}.jpg is missing or corrupt"):
        ds[0]
    assert target in paths


# ----------------------------------------------------------------------------- static-event helpers
def test_event_image_sums_time_and_polarity_and_scales_by_its_peak():
    """A recording whose counts peak below 1 (0.25 + 0.25 = 0.5 at one pixel) is still scaled
    to a peak of exactly 1; an empty one stays zero."""
    from suite.data.paired import event_image

    frames = torch.zeros(2, 2, 3, 3)
    frames[0, 0, 1, 2] = 0.25
    frames[1, 1, 1, 2] = 0.25  # the same pixel, other step and polarity: sum 0.5
    frames[1, 0, 0, 0] = 0.125  # 0.125 / 0.5 = 0.25 after scaling
    img = event_image(frames, 3)
    expected = torch.zeros(3, 3)
    expected[1, 2], expected[0, 0] = 1.0, 0.25
    assert img.shape == (3, 3, 3)
    torch.testing.assert_close(img, expected.expand(3, 3, 3), rtol=0, atol=0)
    assert torch.equal(event_image(torch.zeros(2, 2, 3, 3), 1), torch.zeros(1, 3, 3))


def test_event_partner_keeps_the_static_datas_size_and_seed():
    from suite.data.paired import event_spec_for

    spec = event_spec_for(DataSpec("digits", size=8, seed=3))
    assert (spec.name, spec.size, spec.seed) == ("digits-dvs", 8, 3)
    assert event_spec_for(DataSpec("caltech101", size=32, seed=5)).name == "ncaltech101"
    given = DataSpec("digits-dvs", size=16, seed=1)
    assert event_spec_for(DataSpec("digits"), given) is given


def test_the_wrong_kind_on_either_side_is_refused_by_name():
    from suite.data.paired import event_spec_for

    with pytest.raises(SuiteError) as err:
        event_spec_for(DataSpec("digits"), DataSpec("cifar10"))
    assert str(err.value) == "the event side of a static-event pair must be event data; got cifar10"
    with pytest.raises(SuiteError) as err:
        event_spec_for(DataSpec("digits-dvs"))
    assert str(err.value) == "the static side of a static-event pair must be static images; got digits-dvs"


def test_paired_loaders_turn_only_the_event_side_into_images(tmp_path):
    """Static images pass through untouched (an image has no time or polarity axes to sum);
    the event recordings become event-count images of `as_image` channels."""
    from suite.data.paired import event_image, paired_loaders

    paired = load_paired(DataSpec("digits", size=8), DataSpec("digits-dvs", size=8), tmp_path)
    static_loader, event_loader = paired_loaders(paired, [0, 5], batch_size=2, as_image=1)
    (xs, ys, ks), (xe, ye, ke) = next(iter(static_loader)), next(iter(event_loader))
    assert torch.equal(xs, torch.stack([paired[0][0], paired[5][0]]))
    assert torch.equal(xe, torch.stack([event_image(paired[i][1], 1) for i in (0, 5)]))
    assert torch.equal(ys, ye) and ks.tolist() == ke.tolist() == [0, 5]
