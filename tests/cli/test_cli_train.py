"""CLI: bad input gets one clear line and exit code 2, nothing overwritten."""

from __future__ import annotations

import pytest
import torch

from tests.support.helpers import FAST, assert_one_line_error, cli


def test_train_cli_writes_checkpoint(runner, tmp_path):
    code, out = cli(runner, "train", *FAST, "--epochs", "1", "--out", tmp_path, "--name", "m")
    assert code == 0, out
    assert (tmp_path / "m.pt").is_file()
    assert "test acc" in out


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "mnistx"], "unknown dataset 'mnistx'"),
    (["--arch", "resnet21"], "unknown architecture 'resnet21'"),
    (["--surrogate", "foo"], "unknown surrogate 'foo'"),
    (["--epochs", "0"], "--epochs must be a whole number from 1 to 100000, got 0"),
    (["--epochs", "-3"], "--epochs must be a whole number from 1 to 100000, got -3"),
    (["--kind", "cnn"], "unknown model kind 'cnn'"),
    (["--dataset", "cifar10"], "dataset cifar10 is missing"),
])
def test_train_bad_input(runner, tmp_path, args, needle):
    code, out = cli(runner, "train", *FAST, "--out", tmp_path, *args)
    assert_one_line_error(code, out, needle)
    assert not list(tmp_path.glob("*.pt"))


def test_output_folder_that_is_a_file(runner, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    code, out = cli(runner, "train", *FAST, "--out", target)
    assert_one_line_error(code, out, "is not a folder")
    assert target.read_text() == "keep me"


def test_resume_of_foreign_checkpoint(runner, tmp_path):
    torch.save({"something": 1}, tmp_path / "m.pt")
    before = (tmp_path / "m.pt").read_bytes()
    code, out = cli(runner, "train", *FAST, "--out", tmp_path, "--name", "m", "--resume")
    assert_one_line_error(code, out, "not a suite checkpoint")
    assert (tmp_path / "m.pt").read_bytes() == before


@pytest.mark.parametrize("name,written", [("r.pt", "r.pt"), ("r", "r.pt"), ("r.v2", "r.v2.pt")])
def test_name_with_the_suffix_keeps_it(runner, tmp_path, name, written):
    code, out = cli(runner, "train", *FAST, "--epochs", "1", "--out", tmp_path, "--name", name)
    assert code == 0, out
    assert sorted(p.name for p in tmp_path.iterdir()) == [written]
