"""`suite attack` and `suite cka --compare clean adv` from the command line, including bad input."""

from __future__ import annotations

import pytest
import torch

from suite.results.attacks import read_store
from suite.results.cka import CKAResult
from tests.support.helpers import assert_one_line_error, cli, make_checkpoint


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
    assert store.methods == ["fgsm", "pgd", "worst"] and store.n_samples == 16
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
    (["--eps", "-0.1"], "--eps must be a finite number in [0, 1], got -0.1"),
    (["--eps", "2"], "--eps must be a finite number in [0, 1], got 2"),
    (["--method", "pgd", "--alpha", "4/255", "--eps", "2/255", "--steps", "1"], "alpha 4/255 > eps 2/255"),
    (["--method", "cw"], "unknown attack method 'cw'"),
    (["--method", " ,"], "--method ' ,' has an empty item"),
    (["--method", " "], "--method is empty"),
    (["--grad", "bpt"], "unknown gradient mode 'bpt'"),
    (["--grad", "transfer"], "needs a source model (--source)"),
    (["--source", "snn.pt"], "only applies to gradient mode transfer (--grad transfer)"),
    (["--source", "snn.pt", "--grad", "bptt"], "only applies to gradient mode transfer, not bptt"),
    (["--attack-surrogate", "nope"], "unknown surrogate 'nope'"),
    (["--attack-surrogate", "atan,fast_sigmoid,nope"], "unknown surrogate 'nope'"),
    (["--method", "square", "--queries", "0"], "--queries must be a whole number from 1 to 10000000, got 0"),
    (["--method", "apgd-ce", "--iterations", "0"], "--iterations must be a whole number from 1 to 100000, got 0"),
    (["--method", "pgd,apgd"], "unknown attack method 'apgd'"),
    (["--resume"], "no partial results"),
])
def test_attack_bad_input(runner, tmp_path, ckpts, args, needle):
    code, out = attack(runner, tmp_path, "--model", ckpts["snn"], *args)
    assert_one_line_error(code, out, needle)
    assert not (tmp_path / "attacks").exists() or not list((tmp_path / "attacks").glob("*.h5"))


def test_source_of_a_real_checkpoint_without_transfer_is_refused(runner, tmp_path, ckpts):
    """A source model that exists is refused all the same when the mode is not transfer, and no
    store is written (test_attack_bad_input gives a source path that does not exist: the rule
    is about the options, so it is reported before any file is read)."""
    code, out = attack(runner, tmp_path, "--model", ckpts["snn"], "--source", ckpts["ann"], "--method", "fgsm")
    assert_one_line_error(code, out, "a source model (--source) only applies to gradient mode transfer (--grad transfer)")
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


def test_new_methods_store_budgets_worst_case_verdict_and_feed_clean_adv_cka(runner, tmp_path, ckpts):
    code, out = attack(runner, tmp_path, "--model", ckpts["ann"], "--method", "apgd-ce,square,autoattack",
                       "--eps", "0,8/255", "--iterations", 2, "--queries", 10)
    assert code == 0, out
    path = tmp_path / "attacks" / "ann-apgd-ce-square-autoattack-bptt.h5"
    store = read_store(path)
    assert store.methods == ["apgd-ce", "square", "autoattack", "worst"]
    assert store.config["budgets"]["autoattack"]["iterations"] == 2
    assert store.config["budgets"]["square"]["queries"] == 10
    assert store.config["verdict"]["message"] and store.config["checks"][-1]["name"] == "masking verdict"
    assert len(store.entry("worst", 8 / 255).broken_by) == 16
    assert not path.with_suffix(".partial").exists()  # removed once the store is written
    assert store.summary()[-1]["grad"] == "worst case over 3 attacks"
    for words in ("attack budgets", "square: gradient-free", "masking verdict", "iterations 2"):
        assert words in out, words
    for method in ("worst", "autoattack", "square"):
        code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", path, "--method", method,
                        "--batch-size", 8, "--out", tmp_path / "reports")
        assert code == 0, out
        zero = CKAResult.load(tmp_path / "reports" / f"{path.stem.replace('ann', 'cka-clean-adv-ann', 1)}-{method}-eps0.h5")
        torch.testing.assert_close(zero.matrix.diagonal(), torch.ones(12, dtype=torch.float64), atol=1e-6, rtol=0)
        assert (tmp_path / "reports" / f"cka-clean-adv-{path.stem}-{method}-eps8_255.h5").is_file()


def test_leftover_partial_results_need_resume(runner, tmp_path, ckpts):
    (tmp_path / "attacks" / "snn-fgsm-bptt.partial").mkdir(parents=True)
    code, out = attack(runner, tmp_path, "--model", ckpts["snn"], "--method", "fgsm")
    assert_one_line_error(code, out, "pass --resume to continue it")


def test_check_adds_large_eps_to_the_verdict(runner, tmp_path, ckpts):
    code, out = attack(runner, tmp_path, "--model", ckpts["ann"], "--method", "fgsm", "--check")
    assert code == 0, out
    store = read_store(tmp_path / "attacks" / "ann-fgsm-bptt.h5")
    names = [c["name"] for c in store.config["checks"]]
    assert names[-2:] == ["large_eps", "masking verdict"]
    assert "large_eps" in store.config["checks"][-1]["message"]
    assert store.config["verdict"]["masking_suspected"] is (not store.config["checks"][-2]["passed"])


def test_store_of_other_weights_of_the_same_model_is_refused(runner, tmp_path, ckpts):
    """Issue 28: a checkpoint of the same config trained apart (another seed) passed the config
    check, and clean-vs-adversarial CKA measured examples crafted against another network. The
    store now records a digest of the target's weights; --other-model says it is meant."""
    other = make_checkpoint(tmp_path / "snn-other.pt", "snn", seed=1)  # same config, other weights
    attack(runner, tmp_path, "--model", ckpts["snn"], "--method", "fgsm")
    store = tmp_path / "attacks" / "snn-fgsm-bptt.h5"
    assert len(read_store(store).config["model_digest"]) == 64
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", store, "--model", other,
                    "--batch-size", 8, "--out", tmp_path / "reports")
    assert_one_line_error(code, out, "made for other weights than those of", "--other-model")
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", store, "--model", other,
                    "--other-model", "--batch-size", 8, "--out", tmp_path / "reports")
    assert code == 0, out
    # the attacked checkpoint itself, given or by default, passes the check
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", store, "--batch-size", 8,
                    "--out", tmp_path / "reports")
    assert code == 0, out
    result = CKAResult.load(tmp_path / "reports" / "cka-clean-adv-snn-fgsm-bptt-fgsm-eps8_255.h5")
    assert result.config["model_digest"] == read_store(store).config["model_digest"]


def test_a_checkpoint_rewritten_after_the_attack_is_refused(runner, tmp_path, ckpts):
    """The store names its checkpoint by path; training again into that path changes the weights."""
    attack(runner, tmp_path, "--model", ckpts["ann"], "--method", "fgsm")
    make_checkpoint(ckpts["ann"], "ann", seed=5)
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", tmp_path / "attacks" / "ann-fgsm-bptt.h5",
                    "--batch-size", 8, "--out", tmp_path / "reports")
    assert_one_line_error(code, out, f"made for other weights than those of {ckpts['ann']}")


@pytest.mark.parametrize("blocked", [".h5", ".png"])
def test_a_folder_where_the_store_or_its_figure_goes_is_refused_before_the_attack(runner, tmp_path, ckpts, blocked):
    """Issue 28: the atomic rename onto a folder raised IsADirectoryError with a traceback, after
    the whole attack had run."""
    folder = tmp_path / "attacks" / f"n{blocked}"
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("x")
    code, out = attack(runner, tmp_path, "--model", ckpts["ann"], "--method", "fgsm", "--name", "n")
    assert_one_line_error(code, out, f"cannot write {folder}: it is a folder")
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in (tmp_path / "attacks").iterdir()) == [folder.name]


@pytest.mark.parametrize("blocked", ["-fgsm-eps8_255.h5", "-fgsm.png"])
def test_a_folder_where_a_clean_adv_result_goes_is_refused(runner, tmp_path, ckpts, blocked):
    attack(runner, tmp_path, "--model", ckpts["ann"], "--method", "fgsm", "--eps", "0,8/255")
    folder = tmp_path / "reports" / f"r{blocked}"
    folder.mkdir(parents=True)
    code, out = cli(runner, "cka", "--compare", "clean", "adv", "--attack", tmp_path / "attacks" / "ann-fgsm-bptt.h5",
                    "--batch-size", 8, "--name", "r", "--out", tmp_path / "reports")
    assert_one_line_error(code, out, f"cannot write {folder}: it is a folder")
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [folder.name]
