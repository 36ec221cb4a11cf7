"""`suite attack` and `suite cka --compare clean adv` from the command line, including bad input."""

from __future__ import annotations

import pytest
import torch

from suite.results.attacks import read_store
from suite.results.cka import CKAResult
from tests.conftest import cli
from tests.helpers import make_checkpoint
from tests.test_cli_train import assert_one_line_error


@pytest.fixture
def ckpts(tmp_path):
    return {"snn": make_checkpoint(tmp_path / "snn.pt", "snn"),
            "ann": make_checkpoint(tmp_path / "ann.pt", "ann"),
            "ann16": make_checkpoint(tmp_path / "ann16.pt", "ann", size=16)}


def attack(runner, tmp_path, *args):
    return cli(runner, "attack", *args, "--samples", 16, "--batch-size", 8, "--out", tmp_path / "attacks")


def test_attack_writes_store_table_and_figure(runner, tmp_path, ckpts):
    code, out = attack(runner, tmp_path, "--model", ckpts["snn"], "--method", "fgsm,pgd", "--eps", "0,8/255",
                       "--steps", 2)
    assert code == 0, out
    path = tmp_path / "attacks" / "snn-fgsm-pgd-bptt.h5"
    store = read_store(path)
    assert store.methods == ["fgsm", "pgd"] and store.n_samples == 16
    assert [c["name"] for c in store.config["checks"]][0] == "bounds"
    assert path.with_suffix(".png").is_file()
    assert "robust acc" in out and "sanity checks" in out


def test_clean_adv_cka_is_one_at_eps_zero(runner, tmp_path, ckpts):
    attack(runner, tmp_path, "--model", ckpts["ann"], "--method", "fgsm", "--eps", "0,8/255")
    store = tmp_path / "attacks" / "ann-fgsm-bptt.h5"
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", store, "--batch-size", 8,
                    "--out", tmp_path / "reports")
    assert code == 0, out
    zero = CKAResult.load(tmp_path / "reports" / "cka-clean-adv-ann-fgsm-bptt-fgsm-eps0.h5")
    torch.testing.assert_close(zero.matrix.diagonal(), torch.ones(12, dtype=torch.float64), atol=1e-6, rtol=0)
    assert (tmp_path / "reports" / "cka-clean-adv-ann-fgsm-bptt-fgsm-eps8_255.h5").is_file()
    assert (tmp_path / "reports" / "cka-clean-adv-ann-fgsm-bptt-fgsm.png").is_file()


@pytest.mark.parametrize("args,needle", [
    (["--eps", "8/0"], "divides by zero"),
    (["--eps", "abc"], "'abc' is not a number"),
    (["--eps", "-0.1"], "outside [0, 1]"),
    (["--eps", "2"], "outside [0, 1]"),
    (["--alpha", "4/255", "--eps", "2/255", "--steps", "1"], "alpha 4/255 > eps 2/255"),
    (["--method", "cw"], "unknown attack method 'cw'"),
    (["--method", " ,"], "--method is empty"),
    (["--grad", "bpt"], "unknown gradient mode 'bpt'"),
    (["--grad", "transfer"], "needs a source model (--source)"),
    (["--source", "snn.pt"], "only applies to gradient mode transfer, not bptt"),
    (["--attack-surrogate", "nope"], "unknown surrogate 'nope'"),
])
def test_attack_bad_input(runner, tmp_path, ckpts, args, needle):
    code, out = attack(runner, tmp_path, "--model", ckpts["snn"], *args)
    assert_one_line_error(code, out, needle)
    assert not (tmp_path / "attacks").exists() or not list((tmp_path / "attacks").glob("*.h5"))


def test_store_of_another_model_is_refused(runner, tmp_path, ckpts):
    attack(runner, tmp_path, "--model", ckpts["snn"], "--method", "fgsm")
    store = tmp_path / "attacks" / "snn-fgsm-bptt.h5"
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", store, "--model", ckpts["ann"],
                    "--out", tmp_path / "reports")
    assert_one_line_error(code, out, "different model", "kind")
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", store, "--model", ckpts["ann16"],
                    "--other-model", "--out", tmp_path / "reports")
    assert_one_line_error(code, out, "different data", "size")


def test_transfer_attack_from_ann_twin(runner, tmp_path, ckpts):
    code, out = attack(runner, tmp_path, "--model", ckpts["snn"], "--grad", "transfer", "--source", ckpts["ann"],
                       "--method", "fgsm")
    assert code == 0, out
    store = read_store(tmp_path / "attacks" / "snn-fgsm-transfer.h5")
    assert store.config["gradient"]["grad"].startswith("transfer")


def test_clean_adv_needs_a_store(runner, tmp_path, ckpts):
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--model", ckpts["snn"])
    assert_one_line_error(code, out, "needs --attack")
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", tmp_path / "missing.h5")
    assert_one_line_error(code, out, "file not found")
