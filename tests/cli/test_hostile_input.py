"""Input a hostile or careless user gives: each is one `error:` line, exit 2, and nothing written
where it should not be (names that escape their folder, NaN and out-of-domain numbers, empty
list items, a folder where a file goes)."""

from __future__ import annotations

import pytest

from tests.support.helpers import FAST, assert_one_line_error, cli, make_checkpoint


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name, needle", [("../../x", "is a file name, not a path"), ("sub/x", "not a path"),
                                          ("", "--name is empty")])
def test_an_attack_name_never_leaves_out(runner, tmp_path, name, needle):
    model = make_checkpoint(tmp_path / "runs" / "m.pt", "ann")
    out = tmp_path / "deep" / "er" / "attacks"
    code, text = cli(runner, "attack", "--model", model, "--samples", "8", "--out", out, "--name", name)
    assert_one_line_error(code, text, "error:", needle)
    assert _files(tmp_path) == [model]  # no x.h5, x.png two levels up, nothing in out


@pytest.mark.parametrize("command", ["train", "cka"])
def test_train_and_cka_names_never_leave_out(runner, tmp_path, command):
    model = make_checkpoint(tmp_path / "m.pt", "ann")
    args = ["train", *FAST, "--epochs", "1"] if command == "train" else \
        ["cka", "--compare", "layers", "--model", model, "--samples", "8", "--batch-size", "8"]
    for name in ("../x", ""):
        code, text = cli(runner, *args, "--out", tmp_path / "out", "--name", name)
        assert_one_line_error(code, text, "error:", "--name")
    assert _files(tmp_path) == [model]


@pytest.mark.parametrize("option, value, needle", [
    ("--width", "nan", "--width must be a finite number in [0.0625, 64], got nan"),
    ("--width", "1e-9", "--width must be a finite number in [0.0625, 64], got 1e-09"),  # zero channels
    ("--lr", "inf", "--lr must be a finite number in (0, 10], got inf"),
    ("--tau", "0.5", "--tau must be a finite number in [1, 1e+06], got 0.5"),
    ("--threshold", "0", "--threshold must be a finite number in (0, 1000], got 0"),
    ("--workers", "-1", "--workers must be a whole number from 0 to 256, got -1"),
    ("--epochs", "0", "--epochs must be a whole number from 1 to 100000, got 0"),
    ("--timesteps", "0", "--timesteps must be a whole number from 1 to 1000, got 0"),
    ("--size", "2", "--size must be a whole number from 4 to 4096, got 2"),
])
def test_training_refuses_degenerate_numbers_before_any_work(runner, tmp_path, option, value, needle):
    args = [a for a in FAST]
    if option in args:
        i = args.index(option)
        del args[i:i + 2]
    code, text = cli(runner, "train", *args, option, value, "--out", tmp_path / "runs")
    assert_one_line_error(code, text, "error:", needle)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, needle", [
    (("--eps", "nan"), "--eps must be a finite number in [0, 1], got nan"),
    (("--eps", "8/255,"), "--eps '8/255,' has an empty item"),
    (("--eps", "1.5"), "--eps must be a finite number in [0, 1], got 1.5"),
    (("--alpha", "inf"), "--alpha must be a finite number in (0, 1], got inf"),
    (("--method", "pgd,,fgsm"), "--method 'pgd,,fgsm' has an empty item"),
    (("--attack-surrogate", "atan,"), "--attack-surrogate 'atan,' has an empty item"),
    (("--steps", "0"), "--steps must be a whole number from 1 to 100000, got 0"),
    (("--queries", "0"), "--queries must be a whole number from 1 to 10000000, got 0"),
    (("--samples", "0"), "--samples must be a whole number from 1 to"),
    (("--batch-size", "0"), "--batch-size must be a whole number from 1 to"),
])
def test_attacks_refuse_degenerate_values(runner, tmp_path, args, needle):
    model = make_checkpoint(tmp_path / "m.pt", "ann")
    code, text = cli(runner, "attack", "--model", model, *args, "--out", tmp_path / "attacks")
    assert_one_line_error(code, text, "error:", needle)
    assert not (tmp_path / "attacks").exists()


@pytest.mark.parametrize("args, needle", [
    (("--samples", "3"), "--samples must be a whole number from 4 to"),
    (("--batch-size", "3"), "--batch-size must be a whole number from 4 to"),
    (("--bootstrap", "-1"), "--bootstrap must be a whole number from 0 to 100000, got -1"),
    (("--layers", "conv1,,fc"), "--layers 'conv1,,fc' has an empty item"),
    (("--time", "median"), "unknown --time 'median'; choose one of: mean, concat, each"),
])
def test_cka_refuses_degenerate_values(runner, tmp_path, args, needle):
    model = make_checkpoint(tmp_path / "m.pt", "ann")
    code, text = cli(runner, "cka", "--compare", "layers", "--model", model, *args, "--out", tmp_path / "reports")
    assert_one_line_error(code, text, "error:", needle)
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("args, needle", [
    (("--timesteps", "2,,4"), "--timesteps '2,,4' has an empty item"),
    (("--seeds", "0,,1"), "--seeds '0,,1' has an empty item"),
    (("--seeds", "0,0"), "seeds [0, 0] names a seed twice"),
    (("--seeds", "-1"), "seed must be a whole number from 0 to"),
    (("--protocol", "paper"), "unknown protocol 'paper'; choose one of: suite, snncka"),
    (("--protocol", "suite,suite"), "protocol ['suite', 'suite'] names a protocol twice"),
    (("--width", "nan"), "--width must be a finite number in [0.0625, 64], got nan"),
    (("--epochs", "0"), "--epochs must be a whole number from 1 to 100000, got 0"),
])
def test_experiments_refuse_degenerate_overrides(runner, tmp_path, args, needle):
    code, text = cli(runner, "experiment", "temporal", *args, "--models", tmp_path / "runs", "--out", tmp_path / "out")
    assert_one_line_error(code, text, "error:", needle)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def test_demo_refuses_zero_epochs(runner, tmp_path):
    code, text = cli(runner, "demo", "--epochs", "0", "--out", tmp_path / "demo")
    assert_one_line_error(code, text, "error:", "--epochs must be a whole number from 1 to 100000, got 0")
    assert not (tmp_path / "demo").exists()


def test_a_report_page_onto_a_folder_is_one_error_and_keeps_the_folder(runner, tmp_path):
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "keep.txt").write_text("x")
    make_checkpoint(tmp_path / "runs" / "m.pt", "ann")
    code, text = cli(runner, "report", tmp_path / "runs", "--html", tmp_path / "page")
    assert_one_line_error(code, text, "error:", f"--html {tmp_path / 'page'} is a folder")
    assert [p.name for p in (tmp_path / "page").iterdir()] == ["keep.txt"]


def test_figure_formats_refuse_an_empty_item(runner, tmp_path):
    make_checkpoint(tmp_path / "runs" / "m.pt", "ann")
    code, text = cli(runner, "report", tmp_path / "runs", "--figures", tmp_path / "f", "--format", "png,,pdf")
    assert_one_line_error(code, text, "error:", "--format 'png,,pdf' has an empty item")
    assert not (tmp_path / "f").exists()
