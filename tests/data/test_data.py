"""Static data: the embedded digits split, missing-data messages, downloads without a network."""

from __future__ import annotations

import socket
import urllib.error

import pytest
import torch

from suite.data import DataSpec, load_dataset
from suite.data.loaders import eval_loader, subset_indices
from suite.errors import SuiteError
from tests.support.helpers import cli


def test_digits_split_is_deterministic_and_stratified():
    a = load_dataset(DataSpec("digits", seed=1), "unused", "train")
    b = load_dataset(DataSpec("digits", seed=1), "unused", "train")
    c = load_dataset(DataSpec("digits", seed=2), "unused", "train")
    assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])
    assert not torch.equal(a.tensors[1], c.tensors[1])
    test = load_dataset(DataSpec("digits", seed=1), "unused", "test")
    assert len(a) + len(test) == 1797
    per_class = torch.bincount(torch.cat([a.tensors[1], test.tensors[1]]), minlength=10).double()
    in_test = torch.bincount(test.tensors[1], minlength=10).double()
    assert ((in_test - 0.25 * per_class).abs() <= 1).all()  # stratified: 25% of each class, +-1


@pytest.mark.parametrize("size,channels", [(16, 1), (32, 3), (8, 1)])
def test_digits_shapes_and_range(size, channels):
    ds = load_dataset(DataSpec("digits", size=size, channels=channels), "unused", "test")
    x, y = ds[0]
    assert x.shape == (channels, size, size) and x.dtype == torch.float32
    assert 0.0 <= float(ds.tensors[0].min()) and float(ds.tensors[0].max()) <= 1.0


def test_bad_digits_size_is_a_clear_error():
    with pytest.raises(SuiteError, match="digits size must be 8, 16 or 32"):
        load_dataset(DataSpec("digits", size=20), "unused", "test")


def test_missing_cifar_names_files_place_and_command(tmp_path):
    with pytest.raises(SuiteError) as err:
        load_dataset(DataSpec("cifar10"), tmp_path, "train")
    msg = str(err.value)
    assert "data_batch_1" in msg and str(tmp_path / "cifar-10-batches-py") in msg
    assert "suite data download cifar10" in msg


def test_download_without_network_fails_fast_with_one_line(runner, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, out = cli(runner, "data", "download", "cifar10", "--data-root", tmp_path)
    assert code == 2, out
    assert out.strip().startswith("error: download of CIFAR10 into") and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_subset_is_seeded_and_sorted():
    a = subset_indices(100, 10, seed=4)
    assert a == subset_indices(100, 10, seed=4) and a == sorted(a) and len(set(a)) == 10
    assert a != subset_indices(100, 10, seed=5)
    assert subset_indices(5, None, seed=0) == [0, 1, 2, 3, 4]


def test_eval_loader_yields_indices_of_the_split():
    loader = eval_loader(DataSpec("digits"), "unused", "test", samples=20, batch_size=8, seed=0)
    x, y, idx = next(iter(loader))
    full = load_dataset(DataSpec("digits"), "unused", "test")
    assert torch.equal(x[0], full[int(idx[0])][0])


@pytest.mark.parametrize("cached", [False, True])
def test_data_list_shows_every_dataset(runner, tmp_path, cached):
    if cached:  # a non-empty cache widens the table: names must still show in full
        (tmp_path / "cache" / "digits-dvs").mkdir(parents=True)
        with open(tmp_path / "cache" / "digits-dvs" / "f.pt", "wb") as f:
            f.truncate(15_000_000)  # "14.3 MB" (sparse: no disk used)
    code, out = cli(runner, "data", "list", "--data-root", tmp_path)
    assert code == 0
    for name in ("digits", "digits-dvs", "cifar10", "cifar10dvs", "ncaltech101", "nmnist"):
        assert name in out
