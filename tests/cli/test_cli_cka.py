"""`suite cka` and `suite report` from the command line, including bad input."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import pytest
import torch

from suite.cka.jobs import run_comparison
from suite.cka.settings import CKAConfig, CKAInputs
from suite.errors import SuiteError
from suite.results.cka import CKAResult
from suite.where import Where
from tests.support.helpers import assert_one_line_error, cli, make_checkpoint


@pytest.fixture
def ckpts(tmp_path):
    return {
        "snn": make_checkpoint(tmp_path / "snn.pt", "snn"),
        "ann": make_checkpoint(tmp_path / "ann.pt", "ann"),
        "dvs": make_checkpoint(tmp_path / "dvs.pt", "snn", dataset="digits-dvs", size=8),
    }


def run_cka(runner, tmp_path, *args):
    return cli(runner, "cka", *args, "--samples", 32, "--batch-size", 16, "--out", tmp_path / "reports")


def test_models_comparison_writes_result_and_figure(runner, tmp_path, ckpts):
    code, out = run_cka(runner, tmp_path, "--compare", "models", "--model", ckpts["snn"], "--model2", ckpts["ann"])
    assert code == 0, out
    path = tmp_path / "reports" / "cka-models-snn-vs-ann.h5"
    result = CKAResult.load(path)
    assert result.matrix.shape == (12, 12) and result.n_samples == 32
    assert path.with_suffix(".png").stat().st_size > 0
    with h5py.File(path) as f:
        assert f.attrs["schema_version"] == 1 and f.attrs["kind"] == "cka"
        for key in ("cka", "hsic_ab", "hsic_aa", "hsic_bb", "layers_a", "layers_b", "n_samples"):
            assert key in f
    assert "same layer" in out


def test_time_comparison_has_leading_layer_axis(runner, tmp_path, ckpts):
    code, out = run_cka(runner, tmp_path, "--compare", "time", "--model", ckpts["snn"], "--layers", "conv1,layer1.0")
    assert code == 0, out
    result = CKAResult.load(tmp_path / "reports" / "cka-time-snn.h5")
    assert result.matrix.shape == (2, 2, 2)
    # the same Grams on both sides, float64 HSIC sums of n² = 256 terms (batches of 16): <= n² u = 3e-14 from 1
    torch.testing.assert_close(result.matrix[:, 0, 0], torch.ones(2, dtype=torch.float64), atol=1e-9, rtol=0)


def test_layers_comparison_diagonal_is_one(runner, tmp_path, ckpts):
    code, out = run_cka(runner, tmp_path, "--compare", "layers", "--model", ckpts["ann"])
    assert code == 0, out
    m = CKAResult.load(tmp_path / "reports" / "cka-layers-ann.h5").matrix
    # <= n² u = 3e-14 from 1 (as above); a mis-paired layer is off by > 1e-3
    torch.testing.assert_close(m.diagonal(), torch.ones(m.shape[0], dtype=torch.float64), atol=1e-9, rtol=0)


def test_static_event_comparison_pairs_the_same_images(runner, tmp_path, ckpts):
    code, out = run_cka(runner, tmp_path, "--compare", "static", "event", "--model", ckpts["ann"],
                        "--model2", ckpts["dvs"], "--data-root", tmp_path / "data")
    assert code == 0, out
    result = CKAResult.load(tmp_path / "reports" / "cka-static-event-ann-vs-dvs.h5")
    assert result.compare == "static-event" and result.n_samples == 32


def test_static_event_with_one_model_uses_event_count_images(runner, tmp_path, ckpts):
    code, out = run_cka(runner, tmp_path, "--compare", "static", "event", "--model", ckpts["ann"],
                        "--data-root", tmp_path / "data")
    assert code == 0, out
    result = CKAResult.load(tmp_path / "reports" / "cka-static-event-ann.h5")
    assert result.config["event_input"] == "event-count image" and result.n_samples == 32
    code, out = run_cka(runner, tmp_path, "--compare", "static", "event", "--model", ckpts["dvs"])
    assert_one_line_error(code, out, "the static side of a static-event pair must be static images; got digits-dvs")


def test_event_image_sums_time_and_polarity():
    from suite.data.paired import event_image
    frames = torch.zeros(3, 2, 4, 4)
    frames[0, 0, 1, 1] = 1.0
    frames[2, 1, 1, 1] = 1.0
    frames[1, 1, 2, 3] = 0.5
    img = event_image(frames, 3)
    assert img.shape == (3, 4, 4)
    assert img[0, 1, 1] == 1.0 and img[2, 2, 3] == 0.25 and float(img.sum()) == 3 * 1.25
    assert torch.equal(event_image(torch.zeros(2, 2, 4, 4), 1), torch.zeros(1, 4, 4))


def test_report_reads_a_result(runner, tmp_path, ckpts):
    run_cka(runner, tmp_path, "--compare", "models", "--model", ckpts["snn"], "--model2", ckpts["ann"])
    path = tmp_path / "reports" / "cka-models-snn-vs-ann.h5"
    path.with_suffix(".png").unlink()
    code, out = cli(runner, "report", path)
    assert code == 0 and "same layer on both sides" in out and "layer3.2" in out
    assert not path.with_suffix(".png").exists()  # figures only with --figures DIR


@pytest.mark.parametrize("args,needle", [
    (["--compare", "models"], "needs --model2"),
    (["--compare", "bogus"], "unknown comparison 'bogus'"),
    (["--compare", "layers", "--layers", "layer9.9"], "layer9.9"),
    (["--compare", "layers", "--time", "median"], "unknown --time 'median'"),
    (["--compare", "time", "--model", "ANN"], "time comparison needs an SNN"),
    (["--compare", "layers", "--attack", "x.h5"], "--attack belongs to --compare clean adv, not --compare layers"),
    (["--compare", "clean", "adv", "--attack", "x.h5", "--model2", "ANN"], "takes one model (--model)"),
])
def test_cka_bad_input(runner, tmp_path, ckpts, args, needle):
    if "--model" not in args:
        args = [*args, "--model", ckpts["snn"]]
    args = [ckpts["ann"] if a == "ANN" else a for a in args]
    code, out = run_cka(runner, tmp_path, *args)
    assert_one_line_error(code, out, needle)
    assert not list((tmp_path / "reports").glob("*.h5"))


def test_batch_below_four_is_refused(runner, tmp_path, ckpts):
    code, out = cli(runner, "cka", "--compare", "layers", "--model", ckpts["snn"], "--samples", 32,
                    "--batch-size", 3, "--out", tmp_path / "reports")
    assert_one_line_error(code, out, "--batch-size must be a whole number from 4 to 65536, got 3")


def test_nan_features_give_clear_error_and_no_file(runner, tmp_path):
    def poison(model):
        with torch.no_grad():
            model.layer2[0].conv1.weight.fill_(float("nan"))
    bad = make_checkpoint(tmp_path / "bad.pt", "ann", spoil=poison)
    code, out = run_cka(runner, tmp_path, "--compare", "layers", "--model", bad)
    assert_one_line_error(code, out, "NaN")
    assert not list((tmp_path / "reports").glob("*.h5"))
    assert not list((tmp_path / "reports").glob(".*tmp"))


def test_missing_or_corrupt_result_for_report(runner, tmp_path):
    code, out = cli(runner, "report", tmp_path / "nope.h5")
    assert_one_line_error(code, out, "no such file or folder")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    code, out = cli(runner, "report", junk)
    assert_one_line_error(code, out, "not a readable HDF5 file")


def test_existing_result_survives_a_failed_run(runner, tmp_path, ckpts):
    run_cka(runner, tmp_path, "--compare", "layers", "--model", ckpts["ann"], "--name", "keep")
    path = tmp_path / "reports" / "keep.h5"
    before = path.read_bytes()
    code, out = run_cka(runner, tmp_path, "--compare", "layers", "--model", ckpts["ann"], "--name", "keep",
                        "--layers", "nope")
    assert code == 2 and path.read_bytes() == before


@pytest.mark.parametrize("compare,options,needle", [
    ("clean-adv", {}, "--compare clean adv needs --attack"),
    ("clean-adv", {"attack": Path("a.h5"), "model2": Path("b.pt")}, "--compare clean adv takes one model"),
    ("models", {"attack": Path("a.h5")}, "--attack belongs to --compare clean adv, not --compare models"),
    ("time", {"method": "pgd"}, "--method belongs to --compare clean adv, not --compare time"),
    ("static-event", {"other_model": True}, "--other-model belongs to --compare clean adv, not --compare static event"),
])
def test_comparison_option_checks(compare, options, needle):
    """The library's CKA job owns which options each comparison takes (the CLI only parses)."""
    with pytest.raises(SuiteError, match=re.escape(needle)):
        CKAInputs(**options).check(compare)


def test_run_comparison_checks_before_writing(tmp_path):
    with pytest.raises(SuiteError, match="needs --attack"):
        run_comparison(CKAConfig(compare="clean-adv"), CKAInputs(model=tmp_path / "missing.pt"),
                       Where(out=tmp_path / "reports"))
    assert not (tmp_path / "reports").exists()
    CKAInputs(attack=Path("a.h5"), method="pgd", other_model=True).check("clean-adv")  # all its own options


@pytest.mark.parametrize("blocked", [".h5", ".png"])
def test_a_folder_where_the_result_or_its_figure_goes_is_refused_before_the_work(runner, tmp_path, ckpts, blocked):
    """Issue 28: the atomic rename onto a folder raised IsADirectoryError with a traceback."""
    folder = tmp_path / "reports" / f"r{blocked}"
    folder.mkdir(parents=True)
    code, text = run_cka(runner, tmp_path, "--compare", "layers", "--model", ckpts["ann"], "--name", "r")
    assert_one_line_error(code, text, f"cannot write {folder}: it is a folder")
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [folder.name]


def test_results_record_the_digest_of_each_models_weights(runner, tmp_path, ckpts):
    from suite.checkpoint import load_model
    from suite.models.digest import weights_digest

    other = make_checkpoint(tmp_path / "snn1.pt", "snn", seed=1)  # the twins of one seed share their weights
    code, text = run_cka(runner, tmp_path, "--compare", "models", "--model", ckpts["snn"], "--model2", other)
    assert code == 0, text
    config = CKAResult.load(tmp_path / "reports" / "cka-models-snn-vs-snn1.h5").config
    assert config["model_digest"] == weights_digest(load_model(ckpts["snn"])[0])
    assert config["model2_digest"] == weights_digest(load_model(other)[0]) != config["model_digest"]
