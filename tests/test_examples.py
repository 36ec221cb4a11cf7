"""The model files in examples/ stay true: each names a factory that builds, and, with weights of
that network, loads through the suite's door and gives logits (the trained weights are not in the
repository; the example scripts write them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch

pytest.importorskip("spikingjelly", reason="spikingjelly is in the test extra")

from suite.checkpoint import load_model  # noqa: E402
from suite.modelfile import load_factory  # noqa: E402
from tests.support.model_files import write_model_file  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_each_example_model_file_loads_with_weights_of_its_network(tmp_path, name):
    keys = tomllib.loads((EXAMPLES / name).read_text())["model"]
    net = load_factory(keys["factory"], EXAMPLES, EXAMPLES / name)(**keys.get("args", {}))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    factory = str(EXAMPLES / keys["factory"].split(":")[0]) + ":" + keys["factory"].split(":")[1]
    copy = write_model_file(tmp_path / name, {**keys, "factory": factory, "weights": "w.pt"})
    model, read = load_model(copy)
    x = torch.rand(3, *((keys["timesteps"], 2) if read.data_spec.frames else (1,)), keys["size"], keys["size"])
    with torch.no_grad():
        assert model(x).shape == (keys["timesteps"], 3, 10)
