"""spikingjelly's own model zoo through the command line (issue 29): SEW-ResNet-18 and spiking
VGG-11 with BatchNorm, as published, on 3-channel 32x32 digits at T = 2, named by model files:
`suite attack` and `suite cka --compare time`. Slow: VGG-11's 129 M parameters (its classifier
is sized for 224x224 ImageNet inputs whatever the input) take seconds per pass on a CPU."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("spikingjelly", reason="spikingjelly is in the test extra")

from suite.results.attacks import read_store  # noqa: E402
from suite.results.cka import CKAResult  # noqa: E402
from tests.support.helpers import cli  # noqa: E402
from tests.support.model_files import write_model_file  # noqa: E402

ZOO = '''
from spikingjelly.activation_based import functional, neuron, surrogate
from spikingjelly.activation_based.model import sew_resnet, spiking_vgg

LIF = dict(spiking_neuron=neuron.LIFNode, tau=2.0, decay_input=False, detach_reset=True,
           surrogate_function=surrogate.ATan())


def sew18(num_classes):
    net = sew_resnet.sew_resnet18(num_classes=num_classes, cnf="ADD", **LIF)
    functional.set_step_mode(net, "m")
    return net


def vgg11(num_classes):
    net = spiking_vgg.spiking_vgg11_bn(num_classes=num_classes, **LIF)
    functional.set_step_mode(net, "m")
    return net
'''


@pytest.mark.slow
@pytest.mark.parametrize("factory", ["sew18", "vgg11"])
def test_spikingjellys_zoo_runs_attack_and_temporal_cka_from_a_model_file(runner, tmp_path, factory):
    (tmp_path / "zoo.py").write_text(ZOO)
    import importlib.util
    spec = importlib.util.spec_from_file_location("zoo_for_weights", tmp_path / "zoo.py")
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    torch.manual_seed(0)
    torch.save(getattr(zoo, factory)(10).state_dict(), tmp_path / "w.pt")
    model = write_model_file(tmp_path / f"{factory}.toml", {
        "factory": f"zoo.py:{factory}", "args": {"num_classes": 10}, "weights": "w.pt", "dataset": "digits",
        "channels": 3, "size": 32, "timesteps": 2})
    code, text = cli(runner, "attack", "--model", model, "--samples", 4, "--batch-size", 4, "--iterations", 2,
                     "--out", tmp_path / "attacks")
    assert code == 0, text
    store = read_store(tmp_path / "attacks" / f"{factory}-sa-pgd-assg.h5")
    assert store.config["model"]["framework"] == "spikingjelly" and store.n_samples == 4
    assert float(store.entries[0].linf.max()) <= 8 / 255 + 1e-6
    code, text = cli(runner, "cka", "--compare", "time", "--model", model, "--layers", "@neurons", "--samples", 8,
                     "--batch-size", 4, "--out", tmp_path / "reports")
    assert code == 0, text
    result = CKAResult.load(tmp_path / "reports" / f"cka-time-{factory}.h5")
    assert result.matrix.shape[1:] == (2, 2) and result.matrix.shape[0] == (20 if factory == "sew18" else 10)
