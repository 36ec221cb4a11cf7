"""Model files (suite.modelfile): a network built elsewhere enters every command through the door
a checkpoint uses; bad input is one `error:` line, exit 2, nothing written (issue 29)."""

from __future__ import annotations

import pickle

import pytest
import torch

pytest.importorskip("spikingjelly", reason="spikingjelly is in the test extra")

from suite.checkpoint import load_model  # noqa: E402
from suite.models.adapter import ExternalModel  # noqa: E402
from suite.results.attacks import read_store  # noqa: E402
from suite.results.cka import CKAResult  # noqa: E402
from tests.support.helpers import assert_one_line_error, cli, make_checkpoint  # noqa: E402
from tests.support.model_files import reference_model_file, write_model_file  # noqa: E402

FRAMEWORKS = ["spikingjelly", "snntorch"]


@pytest.fixture
def files(tmp_path):
    snn = make_checkpoint(tmp_path / "snn.pt", "snn")
    return {"snn": snn, "ann": make_checkpoint(tmp_path / "ann.pt", "ann"),
            **{f: reference_model_file(tmp_path, snn, f) for f in FRAMEWORKS}}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_model_file_loads_through_the_checkpoints_door(files, framework):
    model, read = load_model(files[framework])
    twin, _ = load_model(files["snn"])
    assert isinstance(model, ExternalModel) and model.kind == "snn" and model.timesteps == 2
    assert read.data_spec == load_model(files["snn"])[1].data_spec
    described = read.model_config.to_dict()
    assert described["framework"] == framework and described["factory"].endswith("_resnet20")
    assert len(described["digest"]) == 64
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), twin(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_attack_cka_and_report_take_a_model_file(runner, tmp_path, files, framework):
    out = tmp_path / "out"
    code, text = cli(runner, "attack", "--model", files[framework], "--samples", 8, "--iterations", 2,
                     "--out", out / "attacks")
    assert code == 0, text
    store = read_store(out / "attacks" / f"{framework}-sa-pgd-assg.h5")
    assert store.config["model"]["factory"].startswith("tests.support.foreign_twins:")
    assert store.config["model_digest"] == store.config["model"]["digest"]
    code, text = cli(runner, "cka", "--compare", "time", "--model", files[framework], "--samples", 16,
                     "--batch-size", 8, "--out", out / "reports")
    assert code == 0, text
    assert CKAResult.load(out / "reports" / f"cka-time-{framework}.h5").matrix.shape[1:] == (2, 2)
    code, text = cli(runner, "cka", "--compare", "models", "--model", files[framework], "--model2", files["ann"],
                     "--samples", 16, "--batch-size", 8, "--out", out / "reports")
    assert code == 0, text
    code, text = cli(runner, "cka", "--compare", "clean", "adv", "--attack", out / "attacks" / f"{framework}-sa-pgd-assg.h5",
                     "--batch-size", 8, "--out", out / "reports")
    assert code == 0, text
    code, text = cli(runner, "report", out, "--html", out / "page.html")
    assert code == 0, text
    page = (out / "page.html").read_text()
    assert f"SNN {framework} tests.support.foreign_twins:" in page


def test_a_model_file_and_a_checkpoint_of_other_data_are_refused(runner, tmp_path, files):
    dvs = make_checkpoint(tmp_path / "dvs.pt", "snn", dataset="digits-dvs")
    code, text = cli(runner, "cka", "--compare", "models", "--model", files["spikingjelly"], "--model2", dvs,
                     "--samples", 16, "--batch-size", 8, "--out", tmp_path / "r")
    assert_one_line_error(code, text, "read different data (name digits vs digits-dvs")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def _bad(tmp_path, files, **changes):
    """The spikingjelly model file with `changes` to its keys (None removes a key)."""
    import tomllib
    keys = tomllib.loads(files["spikingjelly"].read_text())["model"]
    keys.update(changes)
    return write_model_file(tmp_path / "bad.toml", {k: v for k, v in keys.items() if v is not None})


@pytest.mark.parametrize("changes, needle", [
    ({"factory": "tests.support.no_such_module:build"}, "factory module tests.support.no_such_module does not import "
                                                        "(ModuleNotFoundError"),
    ({"factory": "tests.support.foreign_twins:no_such_function"}, "tests.support.foreign_twins has no callable "
                                                                  "'no_such_function'"),
    ({"factory": "tests.support.foreign_twins:T_DEFAULT"}, "tests.support.foreign_twins.T_DEFAULT is a int, not a function"),
    ({"factory": "missing.py:build"}, "factory file"),
    ({"factory": "no colon"}, "write package.module:function or file.py:function"),
    ({"weights": "nowhere.pt"}, "weights file not found"),
    ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
    ({"weights": None}, "[model] needs weights"),
    ({"epochs": 3}, "unknown key 'epochs'"),
    ({"input": "TBC"}, "input = 'TBC': choose one of TB, BT, B"),
    ({"output": "BT"}, "the model's output has shape [2, 3, 10], not logits [B, T, classes] = [3, 2, 10]"),
    ({"output_index": 2}, "output_index = 2, but the model's output is one Tensor, not a tuple"),
    ({"frames": "time-clip"}, "frames = 'time-clip' applies to event data; digits is static"),
])
def test_a_bad_model_file_is_one_error_line(runner, tmp_path, files, changes, needle):
    bad = _bad(tmp_path, files, **changes)
    code, text = cli(runner, "attack", "--model", bad, "--samples", 4, "--out", tmp_path / "attacks")
    assert_one_line_error(code, text, "error:", needle)
    assert not (tmp_path / "attacks").exists()


def test_a_timesteps_the_model_contradicts_is_refused(runner, tmp_path, files):
    """The snntorch model loops over its own T (2, from its args): a model file saying 3 is wrong."""
    import tomllib
    keys = tomllib.loads(files["snntorch"].read_text())["model"]
    bad = write_model_file(tmp_path / "bad.toml", {**keys, "timesteps": 3})
    code, text = cli(runner, "attack", "--model", bad, "--samples", 4, "--out", tmp_path / "attacks")
    assert_one_line_error(code, text, "error:", "the model's output runs 2 time steps, but timesteps = 3 "
                                                "(output = 'TB': [T, B, classes])")
    assert not (tmp_path / "attacks").exists()


def test_weights_of_another_architecture_name_the_keys(runner, tmp_path, files):
    state = torch.load(tmp_path / "spikingjelly.pt", weights_only=True)
    state["extra.weight"] = torch.zeros(2)
    del state["fc.bias"]
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "other.pt")
    code, text = cli(runner, "attack", "--model", _bad(tmp_path, files, weights="other.pt"), "--samples", 4,
                     "--out", tmp_path / "attacks")
    assert_one_line_error(code, text, "weights of another architecture than the factory's: 1 missing key(s): fc.bias; "
                                      "1 unexpected key(s): extra.weight")
    state = torch.load(tmp_path / "spikingjelly.pt", weights_only=True)
    state["fc.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "shape.pt")
    code, text = cli(runner, "attack", "--model", _bad(tmp_path, files, weights="shape.pt"), "--samples", 4,
                     "--out", tmp_path / "attacks")
    assert_one_line_error(code, text, "fc.weight is [3, 3] in the file, [10, 16] in the network")


class _Planted:
    def __reduce__(self):
        return (print, ("ran",))


def test_an_unsafe_or_corrupt_weights_file_is_refused_unread(runner, tmp_path, files, capsys):
    (tmp_path / "unsafe.pt").write_bytes(b"")
    torch.save({"model": _Planted()}, tmp_path / "unsafe.pt")
    code, text = cli(runner, "attack", "--model", _bad(tmp_path, files, weights="unsafe.pt"), "--samples", 4)
    assert_one_line_error(code, text, "unsafe.pt is not a plain-weights weights file (it holds pickled Python objects")
    assert "ran" not in text
    (tmp_path / "broken.pt").write_bytes(pickle.dumps([1, 2])[:5])
    code, text = cli(runner, "attack", "--model", _bad(tmp_path, files, weights="broken.pt"), "--samples", 4)
    assert_one_line_error(code, text, "broken.pt is not a readable weights file")


def test_an_output_that_is_not_logits_is_refused(runner, tmp_path, files):
    (tmp_path / "net.py").write_text(
        "import torch\n"
        "class Counts(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.w = torch.nn.Parameter(torch.zeros(1))\n"
        "    def forward(self, x):\n"
        "        return torch.zeros(x.shape[0], 10, dtype=torch.long)\n"
        "def build():\n"
        "    return Counts()\n")
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    bad = write_model_file(tmp_path / "counts.toml", {"factory": "net.py:build", "weights": "w.pt", "dataset": "digits",
                                                      "size": 8, "kind": "ann"})
    code, text = cli(runner, "attack", "--model", bad, "--samples", 4, "--out", tmp_path / "attacks")
    assert_one_line_error(code, text, "the model's output is a torch.int64 tensor, not logits (a floating tensor)")


def test_report_reads_a_model_file_as_it_reads_a_checkpoint(runner, tmp_path, files):
    """Named to `suite report`, a model file is read (its [model] table), never built."""
    code, text = cli(runner, "report", files["snntorch"], files["snn"], "--html", tmp_path / "page.html")
    assert code == 0, text
    words = " ".join(text.split())
    assert "model files" in words and "training runs" in words and "snntorch.toml" in words
    page = (tmp_path / "page.html").read_text()  # the page does not fold long names
    for cell in ("snntorch.toml", "tests.support.foreign_twins:snntorch_resnet20", "digits; T=2, input B, output TB",
                 str(tmp_path / "snntorch.pt")):
        assert f"<td>{cell}</td>" in page, cell
    (tmp_path / "gone.toml").write_text(files["snntorch"].read_text().replace("snntorch.pt", "gone.pt"))
    code, text = cli(runner, "report", tmp_path / "gone.toml")
    assert code == 0 and "gone.pt(missing)" in "".join(text.split())
