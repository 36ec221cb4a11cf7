"""CIFAR-10/100 read from small folders in the real python format; a planted pickle never runs,
wherever the suite opens a batch (data check, train, attack, CKA)."""

from __future__ import annotations

import pickle

import pytest
import torch

from suite.data import DataSpec, load_dataset
from suite.data import cifar
from suite.data.cifar import read_pickle
from suite.errors import SuiteError
from tests.support.cifar_files import LAYOUT, Planted, image_rows, write_cifar
from tests.support.helpers import assert_one_line_error, cli, make_checkpoint


@pytest.fixture
def md5s(monkeypatch):
    """The md5 table the small copies need in place of the official release's; tests add to it."""
    table: dict[str, str] = {}
    monkeypatch.setattr(cifar, "official_md5", lambda cls_name: table)
    return table


def test_cifar10_batches_load_as_the_format_defines_them(tmp_path, md5s):
    """Per image the format stores 1024 red, then 1024 green, then 1024 blue values, row-major;
    ToTensor gives [3, 32, 32] / 255. The train split is data_batch_1..5, the test split test_batch."""
    md5s.update(write_cifar(tmp_path, "cifar10", per_batch=4))
    train = load_dataset(DataSpec("cifar10"), tmp_path, "train")
    test = load_dataset(DataSpec("cifar10"), tmp_path, "test")
    assert (len(train), len(test)) == (20, 4)
    rows = image_rows(4, seed=1)  # data_batch_2, written second
    x, y = train[4 + 2]  # its third image
    assert x.shape == (3, 32, 32) and y == 2
    expected = torch.from_numpy(rows[2].reshape(3, 32, 32).astype("float32")) / 255
    assert torch.equal(x, expected)
    assert x[1, 0, 5] == torch.tensor(float(rows[2][1024 + 5]), dtype=torch.float32) / 255  # green, row 0, column 5


def test_cifar100_takes_the_fine_labels(tmp_path, md5s):
    md5s.update(write_cifar(tmp_path, "cifar100", per_batch=6))
    test = load_dataset(DataSpec("cifar100"), tmp_path, "test")
    assert [test[j][1] for j in range(6)] == [0, 1, 2, 3, 4, 5]


def test_a_batch_that_differs_from_the_official_release_is_named(tmp_path, md5s):
    md5s.update(write_cifar(tmp_path, "cifar10"))
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-7])  # truncated
    with pytest.raises(SuiteError, match=r"data_batch_3 is corrupt or truncated: its md5 differs"):
        load_dataset(DataSpec("cifar10"), tmp_path, "train")


@pytest.mark.parametrize("content, needle", [
    ({"data": [1, 2], "labels": [0]}, "'data' is not an N x 3072 uint8 array"),
    ({"data": image_rows(2, 0), "labels": [0]}, "'labels' is not a list of 2 whole numbers"),
    ([1, 2, 3], "holds a list, not a dict"),
])
def test_a_batch_of_the_wrong_shape_is_one_error_naming_it(tmp_path, md5s, content, needle):
    md5s.update(write_cifar(tmp_path, "cifar10"))
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps(content, protocol=2))
    md5s["test_batch"] = __import__("hashlib").md5(batch.read_bytes()).hexdigest()
    with pytest.raises(SuiteError) as err:
        load_dataset(DataSpec("cifar10"), tmp_path, "test")
    assert str(batch) in str(err.value) and needle in str(err.value)


def test_the_safe_reader_refuses_any_other_class_and_runs_nothing(tmp_path):
    target = tmp_path / "created-by-the-pickle"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Planted(target)}, protocol=2))
    with pytest.raises(SuiteError, match=r"data_batch_1 is not a CIFAR batch: refused to unpickle it "
                                         r"\((io|builtins)\.open is not part of the CIFAR format\)"):
        read_pickle(path)
    assert not target.exists()


def _plant(root, md5s, name: str = "cifar10", batch: str = "data_batch_1"):
    """A copy of `name` whose `batch` creates a file when unpickled, with an md5 the table accepts
    (as an md5 collision with the official file would): only the safe unpickler stands in the way."""
    md5s.update(write_cifar(root, name))
    target = root / "pwned"
    path = root / LAYOUT[name][0] / batch
    path.write_bytes(pickle.dumps({"data": Planted(target), "labels": [0]}, protocol=2))
    md5s[batch] = __import__("hashlib").md5(path.read_bytes()).hexdigest()
    return path, target


def test_data_check_names_a_planted_batch_and_never_runs_it(runner, tmp_path, md5s):
    path, target = _plant(tmp_path, md5s)
    code, out = cli(runner, "data", "check", "cifar10", "--data-root", tmp_path)
    assert code == 2 and "data_batch_1" in out and "refused to unpickle" in " ".join(out.split())
    assert not target.exists()


def test_training_on_a_planted_batch_is_one_error_line_and_runs_nothing(runner, tmp_path, md5s):
    path, target = _plant(tmp_path, md5s)
    code, out = cli(runner, "train", "--dataset", "cifar10", "--size", "8", "--width", "0.25", "--epochs", "1",
                    "--data-root", tmp_path, "--out", tmp_path / "runs")
    assert_one_line_error(code, out, "error:", str(path), "refused to unpickle")
    assert not target.exists() and not list((tmp_path / "runs").glob("*.pt"))


def test_attack_and_cka_on_a_planted_test_batch_are_one_error_line_and_run_nothing(runner, tmp_path, md5s):
    path, target = _plant(tmp_path, md5s, batch="test_batch")
    model = make_checkpoint(tmp_path / "m.pt", "ann", dataset="cifar10", size=8)
    for args in (("attack", "--model", model, "--out", tmp_path / "attacks"),
                 ("cka", "--compare", "layers", "--model", model, "--out", tmp_path / "reports")):
        code, out = cli(runner, *args, "--data-root", tmp_path)
        assert_one_line_error(code, out, "error:", str(path), "refused to unpickle")
    assert not target.exists()
    assert not list((tmp_path / "attacks").glob("*.h5")) and not list((tmp_path / "reports").glob("*.h5"))
