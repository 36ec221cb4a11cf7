"""Event readers and event datasets: real recordings, Tonic layouts, and every kind of bad file."""

from __future__ import annotations

import shutil
import socket

import numpy as np
import pytest
import torch

from tests.support.event_files import aedat4_description, aedat4_event_packet, aedat4_header, write_aedat4, write_atis_bin
from tests.support.event_layouts import (fixtures_dir, random_events, write_caltech101, write_cifar10dvs, write_ncaltech101,
                                 write_nmnist)
from suite.data import DataSpec, get_dataset_info, list_datasets, load_dataset
from suite.data.events import AEDAT4_MAGIC, make_events, read_aedat4, read_atis_bin
from suite.data.manage import check_dataset, dataset_rows, download_dataset
from suite.errors import SuiteError


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ----------------------------------------------------------------------------- real recordings
def test_real_aedat4_recording_matches_readme():
    events = read_aedat4(fixtures_dir() / "sample.aedat4")
    assert len(events) == 111_954
    assert (events["x"].min(), events["x"].max()) == (0, 319)
    assert (events["y"].min(), events["y"].max()) == (0, 239)
    assert int(events["p"].sum()) == 55_023
    assert (events["t"][0], events["t"][-1]) == (1605537493718345, 1605537494308262)


def test_real_atis_recording_matches_readme():
    events = read_atis_bin(fixtures_dir() / "sample_nmnist.bin", sensor=(34, 34))
    assert len(events) == 4_325
    assert events["x"].max() == 33 and events["y"].max() == 33 and events["x"].min() >= 0
    assert int(events["p"].sum()) == 2_145
    assert events["t"][-1] == 311_175
    assert set(np.unique(events["p"])) == {0, 1}


def test_real_aedat2_header_matches_readme():
    import tonic.io
    version, start, timestamp = tonic.io.read_aedat_header_from_file(str(fixtures_dir() / "sample_aedat_header.aedat"))
    assert (version, start, timestamp) == (2.0, 598, 1695355587880)


# ----------------------------------------------------------------------------- writers round-trip
def test_atis_bin_roundtrip_and_bit_layout(tmp_path):
    events = make_events([3, 200], [7, 33], [5, 0x7ABCDE], [1, 0])
    path = write_atis_bin(tmp_path / "a.bin", events)
    raw = path.read_bytes()
    assert raw[:5] == bytes([3, 7, 0x80, 0x00, 0x05])  # x, y, p<<7 | t[22:16], t[15:8], t[7:0]
    assert raw[5:] == bytes([200, 33, 0x7A, 0xBC, 0xDE])
    assert np.array_equal(read_atis_bin(path), events)


def test_aedat4_roundtrip_through_tonic(tmp_path):
    events = random_events(5000, (128, 128))
    path = write_aedat4(tmp_path / "a.aedat4", events, (128, 128))
    assert np.array_equal(read_aedat4(path, sensor=(128, 128)), events)


# ----------------------------------------------------------------------------- bad files
def test_truncated_bin_names_file(tmp_path):
    path = write_atis_bin(tmp_path / "cut.bin", random_events(10, (34, 34)))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(SuiteError, match="cut.bin is truncated"):
        read_atis_bin(path)


def test_empty_bin_names_file(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    with pytest.raises(SuiteError, match="empty.bin holds no events"):
        read_atis_bin(path)


def test_events_outside_sensor_name_file(tmp_path):
    path = write_atis_bin(tmp_path / "wide.bin", make_events([1, 40], [1, 2], [0, 10], [0, 1]))
    with pytest.raises(SuiteError, match=r"wide.bin: events reach x=40.*34x34"):
        read_atis_bin(path, sensor=(34, 34))


def test_aedat4_without_event_stream_names_file(tmp_path):
    description = aedat4_description(8, 8).replace(">EVTS<", ">IMUS<")
    path = tmp_path / "imu.aedat4"
    path.write_bytes(AEDAT4_MAGIC + aedat4_header(description))
    with pytest.raises(SuiteError, match="imu.aedat4 has no event stream"):
        read_aedat4(path)


@pytest.mark.parametrize("payload", [
    b"\x05\x00\x00\x00garbage",                       # header flatbuffer is nonsense
    b"\xff\xff\x00\x00",                              # header length past the end of the file
    b"\x08\x00\x00\x00" + b"\xff" * 8,                # offsets pointing outside the header
])
def test_aedat4_broken_header_names_file(tmp_path, payload):
    path = tmp_path / "broken.aedat4"
    path.write_bytes(AEDAT4_MAGIC + payload)
    with pytest.raises(SuiteError, match="broken.aedat4 has a broken AEDAT4 header"):
        read_aedat4(path)


def test_aedat4_without_magic_names_file(tmp_path):
    path = tmp_path / "plain.aedat4"
    path.write_bytes(b"not an event file at all")
    with pytest.raises(SuiteError, match="plain.aedat4 is not an AEDAT4 file"):
        read_aedat4(path)


def test_aedat4_empty_event_stream_names_file(tmp_path):
    path = tmp_path / "silent.aedat4"
    path.write_bytes(AEDAT4_MAGIC + aedat4_header(aedat4_description(8, 8)))
    with pytest.raises(SuiteError, match="silent.aedat4 holds no events"):
        read_aedat4(path)


def test_aedat4_truncated_packet_names_file(tmp_path):
    path = tmp_path / "cut.aedat4"
    data = AEDAT4_MAGIC + aedat4_header(aedat4_description(8, 8)) + aedat4_event_packet(random_events(50, (8, 8)))
    path.write_bytes(data[:-7])
    with pytest.raises(SuiteError, match="cut.aedat4 is truncated"):
        read_aedat4(path)


def test_aedat4_events_outside_declared_sensor_name_file(tmp_path):
    path = write_aedat4(tmp_path / "liar.aedat4", random_events(50, (64, 64)), (32, 32))
    with pytest.raises(SuiteError, match="liar.aedat4: events reach.*32x32 sensor the file declares"):
        read_aedat4(path)


# ----------------------------------------------------------------------------- datasets from layouts
def test_cifar10dvs_layout_loads_through_registry(tmp_path):
    write_cifar10dvs(tmp_path, per_class=3)
    train = load_dataset(DataSpec("cifar10dvs"), tmp_path, "train")
    test = load_dataset(DataSpec("cifar10dvs"), tmp_path, "test")
    assert (len(train), len(test)) == (20, 10)  # 9:1 per class, at least one test recording
    assert {train.key(i) for i in range(20)}.isdisjoint(test.key(i) for i in range(10))
    x, y = test[0]
    assert x.shape == (10, 2, 48, 48) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.sum() > 0
    assert sorted(test[i][1] for i in range(10)) == list(range(10))


def test_cifar10dvs_rejects_real_320x240_recording(tmp_path):
    write_cifar10dvs(tmp_path, per_class=1)
    real = tmp_path / "CIFAR10DVS" / "airplane" / "cifar10_airplane_0.aedat4"
    shutil.copy(fixtures_dir() / "sample.aedat4", real)
    ds = load_dataset(DataSpec("cifar10dvs", size=32, timesteps=4), tmp_path, "train")
    index = [ds.key(i) for i in range(len(ds))].index("airplane/cifar10_airplane_0")
    with pytest.raises(SuiteError, match=r"cifar10_airplane_0.aedat4: events reach x=319, y=239.*outside the 128x128 sensor expected \(the file declares 320x240\)"):
        ds[index]


def test_ncaltech101_layout_loads_with_per_recording_sensor(tmp_path):
    write_ncaltech101(tmp_path, per_class=2)
    ds = load_dataset(DataSpec("ncaltech101", size=24), tmp_path, "test")
    assert len(ds) == 101
    x, y = ds[0]
    assert x.shape == (8, 2, 24, 24) and 0 <= x.min() and x.max() <= 1
    events, (width, height) = ds.source.events(0)
    assert events["x"].min() == 0 and events["y"].min() == 0  # shifted to the origin, as Tonic does
    assert (width, height) == (events["x"].max() + 1, events["y"].max() + 1)


def test_nmnist_uses_official_split(tmp_path):
    write_nmnist(tmp_path, per_class=1)
    shutil.copy(fixtures_dir() / "sample_nmnist.bin", tmp_path / "NMNIST" / "Test" / "3" / "real.bin")
    train = load_dataset(DataSpec("nmnist"), tmp_path, "train")
    test = load_dataset(DataSpec("nmnist"), tmp_path, "test")
    assert (len(train), len(test)) == (10, 11)
    keys = [test.key(i) for i in range(len(test))]
    x, y = test[keys.index("Test/3/real")]
    assert y == 3 and x.shape == (8, 2, 34, 34) and x.max() <= 1 and x.sum() > 0


def test_partial_copy_gives_missing_message_without_network(tmp_path):
    write_cifar10dvs(tmp_path, per_class=1)
    shutil.rmtree(tmp_path / "CIFAR10DVS" / "truck")
    with pytest.raises(SuiteError) as err:
        load_dataset(DataSpec("cifar10dvs"), tmp_path)
    message = str(err.value)
    assert "truck/*.aedat4" in message and str(tmp_path / "CIFAR10DVS") in message
    assert "figshare" in message and "airplane" not in message


def test_missing_nmnist_names_folders(tmp_path):
    with pytest.raises(SuiteError, match=r"nmnist is missing Train/0/\*\.bin.*garrickorchard"):
        load_dataset(DataSpec("nmnist"), tmp_path)


# ----------------------------------------------------------------------------- data list / check / download
def test_check_dataset_reports_corrupt_files_by_name(tmp_path):
    paths = write_nmnist(tmp_path, per_class=1, n_events=20)
    paths[3].write_bytes(paths[3].read_bytes()[:-1])
    paths[5].write_bytes(b"")
    seen = []
    check = check_dataset("nmnist", tmp_path, progress=lambda k, n, p: seen.append(k))
    problems = dict(check.corrupt)  # paths relative to the dataset folder
    rel = [p.relative_to(tmp_path / "NMNIST").as_posix() for p in (paths[3], paths[5])]
    assert set(problems) == set(rel) and check.missing == [] and check.problems == 2
    assert "truncated" in problems[rel[0]] and "no events" in problems[rel[1]]
    assert seen == list(range(1, 21)) and check.files == 20 and check.folder == tmp_path / "NMNIST"


def test_every_dataset_lists_exactly_its_raw_files(tmp_path, monkeypatch):
    """Each registry entry's raw_files finds the files its layout helper wrote (and no
    other dataset's); simulated twins list their static dataset's files; digits has none."""
    from suite.data import cifar
    from tests.support.cifar_files import LAYOUT, write_cifar

    written = {"cifar10dvs": write_cifar10dvs(tmp_path, per_class=1, n_events=10),
               "nmnist": write_nmnist(tmp_path, per_class=1, n_events=10),
               "ncaltech101": write_ncaltech101(tmp_path, per_class=1, n_events=10),
               "caltech101": write_caltech101(tmp_path, per_class=1)}
    md5s = {}
    for name in ("cifar10", "cifar100"):  # batches and meta, not readme.html
        md5s.update(write_cifar(tmp_path, name, per_batch=2))
        written[name] = [tmp_path / LAYOUT[name][0] / f for f in (*LAYOUT[name][1], LAYOUT[name][3])]
    monkeypatch.setattr(cifar, "official_md5", lambda cls_name: md5s)
    for name in list_datasets():
        own = written.get(name.removesuffix("-dvs"), [])
        listed = get_dataset_info(name).raw_files(tmp_path)
        assert sorted(p for p, _ in listed) == sorted(own), name
        for path, read in listed:
            read(path)  # every good file reads


def test_check_dataset_reports_missing_folders(tmp_path):
    check = check_dataset("cifar10dvs", tmp_path)
    assert len(check.missing) == 10 and check.corrupt == [] and check.files == 0


def test_dataset_rows_show_presence_and_shapes(tmp_path):
    write_nmnist(tmp_path, per_class=1, n_events=20)
    rows = {r["name"]: r for r in dataset_rows(tmp_path)}
    assert rows["nmnist"]["present"] and not rows["cifar10dvs"]["present"]
    assert rows["digits-dvs"]["present"] and rows["digits-dvs"]["kind"] == "event"
    assert rows["cifar10dvs"]["shape"] == (10, 2, 48, 48) and rows["cifar10dvs"]["classes"] == 10
    assert rows["nmnist"]["folder"] == "NMNIST" and rows["nmnist"]["cache_bytes"] == 0


def test_download_of_embedded_dataset_is_a_suite_error(tmp_path):
    with pytest.raises(SuiteError, match="digits has no downloader"):
        download_dataset("digits", tmp_path)


def test_download_network_failure_is_one_suite_error(tmp_path, monkeypatch):
    import tonic.download_utils

    def offline(*args, **kwargs):
        raise OSError("network unreachable")
    monkeypatch.setattr(tonic.download_utils, "_urlretrieve", offline)
    monkeypatch.setattr(tonic.download_utils, "_get_redirect_url", lambda url, max_hops=3: url)
    with pytest.raises(SuiteError, match="download of cifar10dvs into .* failed: network unreachable"):
        download_dataset("cifar10dvs", tmp_path)


def test_check_static_cifar_reports_corrupt_batch_by_name(tmp_path, monkeypatch):
    from suite.data import cifar
    from tests.support.cifar_files import write_cifar

    md5s = write_cifar(tmp_path, "cifar10", per_batch=2)
    monkeypatch.setattr(cifar, "official_md5", lambda cls_name: md5s)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_3").write_bytes(b"\x80\x04garbage")
    md5s["data_batch_3"] = __import__("hashlib").md5(b"\x80\x04garbage").hexdigest()  # past the md5: unpickling fails
    (folder / "test_batch").write_bytes(b"x" * 5)  # differs from the official release
    check = check_dataset("cifar10", tmp_path)
    assert [(f, p.split(":")[0]) for f, p in check.corrupt] == [("data_batch_3", "is not a readable CIFAR batch (UnpicklingError"),
                                                               ("test_batch", "is corrupt or truncated")]
    assert check.missing == []


