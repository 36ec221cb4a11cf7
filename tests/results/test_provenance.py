"""Provenance (suite.results.provenance) in HDF5 results, attack stores and checkpoints:
command line, suite/torch/CUDA versions, git commit, device and date."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch

import suite
from suite.checkpoint import load_checkpoint
from suite.data import DataSpec
from suite.results import provenance as P
from suite.results.attacks import read_summary, write_store
from suite.results.cka import CKAResult
from suite.results.h5 import open_h5, read_provenance, write_h5
from suite.models import ModelSpec
from suite.train import Optimisation, TrainConfig, train
from tests.support import report_files as R

CHECKOUT = Path(suite.__file__).resolve().parents[1]


def expected_commit() -> str | None:
    """HEAD of the checkout the tests import suite from, read with git directly."""
    if not (CHECKOUT / ".git").exists() or shutil.which("git") is None:
        return None
    return subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def check(origin: dict, device: str | None) -> None:
    assert set(origin) == set(P.PROVENANCE_KEYS)
    assert origin["torch_version"] == str(torch.__version__) and origin["suite_version"] == suite.__version__
    assert origin["cuda_version"] == torch.version.cuda
    assert origin["device"] == device
    assert origin["threads"] == torch.get_num_threads()  # the thread count changes training's float sums
    commit = expected_commit()
    assert (origin["git_commit"] or "").split("+")[0] == (commit or "")
    age = dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(origin["created"])
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=5)


def test_cka_result_records_provenance(tmp_path):
    path = R.cka(R.with_diagonal([0.9, 0.5]), "models", layers_a=["a", "b"], layers_b=["a", "b"]).save(
        tmp_path / "r.h5", device="cpu", command="suite cka --compare models")
    result = CKAResult.load(path)
    check(result.provenance, "cpu")
    assert result.provenance["command"] == "suite cka --compare models"
    with h5py.File(path) as f:  # the plain attributes the design lists stay in step
        assert f.attrs["command"] == "suite cka --compare models"
        assert f.attrs["created"] == result.provenance["created"]


def test_attack_store_records_the_device_it_ran_on(tmp_path):
    path = write_store(tmp_path / "s.h5", R.store("snn"))  # the store's config says "cpu"
    check(read_summary(path).provenance, "cpu")


def test_training_writes_provenance_into_the_checkpoint(tmp_path):
    config = TrainConfig(data=DataSpec("digits", size=8), model=ModelSpec(arch="resnet20", kind="ann", width=0.25),
                         optim=Optimisation(epochs=1, batch_size=256, seed=0))
    train(config, tmp_path / "c.pt", show_progress=False)
    check(load_checkpoint(tmp_path / "c.pt").provenance, "cpu")


def test_checkpoint_without_provenance_still_loads(tmp_path):
    from tests.support.helpers import make_checkpoint

    assert load_checkpoint(make_checkpoint(tmp_path / "old.pt")).provenance == {}


def test_no_git_gives_none_and_writing_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    assert P.git_commit() is None
    path = write_h5(tmp_path / "r.h5", "test", {}, lambda f: f.create_dataset("x", data=[1]), device="cpu")
    with open_h5(path) as f:
        origin = read_provenance(f)
    assert origin["git_commit"] is None and origin["device"] == "cpu"


def test_outside_a_checkout_gives_none(monkeypatch, tmp_path):
    monkeypatch.setattr(P, "__file__", str(tmp_path / "a" / "b" / "provenance.py"))
    assert P.git_commit() is None


def test_file_written_before_provenance_reads_what_it_has(tmp_path):
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(schema_version=1, suite_version="0.0.9", created="2024-01-01T00:00:00+00:00",
                       command="suite cka", kind="cka", config=json.dumps({}))
    with open_h5(path) as f:
        origin = read_provenance(f)
    assert origin["command"] == "suite cka" and origin["suite_version"] == "0.0.9"
    assert origin["torch_version"] is None and origin["device"] is None


@pytest.mark.parametrize("stored", ["not json", json.dumps([1, 2])])
def test_garbled_provenance_attribute_is_ignored(tmp_path, stored):
    path = write_h5(tmp_path / "r.h5", "test", {}, lambda f: None, device="cpu")
    with h5py.File(path, "r+") as f:
        f.attrs["provenance"] = stored
    with open_h5(path) as f:
        origin = read_provenance(f)
    assert origin["torch_version"] is None and origin["command"]  # the plain attribute remains


@pytest.mark.parametrize("argv0, expected", [
    ("/venv/bin/suite", "suite demo --out 'a b'"),
    ("/src/suite/__main__.py", "python -m suite demo --out 'a b'"),  # python -m suite / torchrun -m suite
    ("/other/__main__.py", "__main__.py demo --out 'a b'"),
])
def test_command_line_names_the_program(monkeypatch, argv0, expected):
    monkeypatch.setattr(sys, "argv", [argv0, "demo", "--out", "a b"])
    assert P.command_line() == expected


def test_experiment_file_written_before_threads_were_recorded_reads_them_as_none(tmp_path):
    from suite.results.experiment import read_experiment

    path = R.write_results(tmp_path)["experiment"]
    payload = json.loads(path.read_text())
    del payload["provenance"]["threads"]
    path.write_text(json.dumps(payload))
    assert read_experiment(path).provenance["threads"] is None
