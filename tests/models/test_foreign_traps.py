"""The traps that make naive results on other frameworks' SNNs wrong (issue 29), each with a test
that fails without the adapter's handling of it (suite.models.foreign, suite.models.adapter),
and a control showing the trap is there in the framework itself."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

sj = pytest.importorskip("spikingjelly", reason="spikingjelly is in the test extra")

import snntorch as snn  # noqa: E402
from snntorch import surrogate as snn_surrogate  # noqa: E402
from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402

from suite.attacks import AttackConfig, run_attacks  # noqa: E402
from suite.attacks.gradients import attack_model, input_gradient  # noqa: E402
from suite.cka import compare_time  # noqa: E402
from suite.models.adapter import adapt  # noqa: E402
from suite.models.foreign import find_neurons  # noqa: E402

T, SIDE = 3, 6
SJ2 = importlib.util.find_spec("spikingjelly._ops") is not None  # 2.x's new package layout


def sj_net(node=neuron.LIFNode, **kw) -> nn.Module:
    """conv -> BN -> spiking node -> linear, multi-step: [T, B, 1, S, S] -> [T, B, 3]."""
    kw = {"tau": 3.0, "decay_input": False, "detach_reset": True, **kw} if node is neuron.LIFNode else kw
    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), layer.BatchNorm2d(4), node(**kw),
                        layer.Flatten(),  # multi-step: [T*B, C, H, W] -> [T*B, C H W] -> [T, B, C H W]
                        layer.Linear(4 * SIDE * SIDE, 3))
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 1.5)
    return net


class SNNTorchNet(nn.Module):
    """The snntorch tutorials' way: a loop over T in forward, the neuron's state on the neuron."""

    def __init__(self, **leaky):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.lif = snn.Leaky(**{"beta": 0.6, "spike_grad": snn_surrogate.atan(), **leaky})
        self.fc = nn.Linear(4 * SIDE * SIDE, 3)

    def forward(self, x):  # x [B, 1, S, S]
        outs = []
        for _ in range(T):
            spk, _ = self.lif(self.bn(self.conv(x)))
            outs.append(self.fc(spk.flatten(1)))
        return torch.stack(outs)


SHAPE = dict(num_classes=3, in_channels=1, input_size=SIDE, timesteps=T)


def inputs(n=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, SIDE, SIDE, generator=g) * 3, torch.randint(0, 3, (n,), generator=g)


# ------------------------------------------------------------------ eval mode removes the surrogate
@pytest.mark.skipif(SJ2, reason="spikingjelly 2.x's nodes have no graph-free eval path (0.0.0.0.14's have)")
def test_spikingjelly_in_eval_mode_builds_no_graph_but_the_adapted_model_does():
    net = sj_net().eval()
    x, y = inputs()
    xs = x.unsqueeze(0).repeat(T, 1, 1, 1, 1).requires_grad_(True)
    functional.reset_net(net)
    out = net(xs).mean(0)
    assert not out.requires_grad or torch.autograd.grad(out.sum(), xs, allow_unused=True)[0] is None  # the trap
    model = adapt(sj_net(), **SHAPE).eval()
    attacker = attack_model(model)
    g = input_gradient(attacker, x, y)
    assert float(g.abs().max()) > 0
    bns = [m for m in attacker.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)  # BatchNorm stays on its running statistics


# ------------------------------------------------------------------ state between forward passes
@pytest.mark.parametrize("framework", ["spikingjelly", "snntorch"])
def test_state_is_reset_before_every_forward_and_for_this_model_only(framework):
    x, _ = inputs()
    if framework == "spikingjelly":
        raw = sj_net()
        run_raw = lambda: raw(x.unsqueeze(0).repeat(T, 1, 1, 1, 1))  # noqa: E731
        model, other = adapt(sj_net(), **SHAPE), sj_net()
    else:
        raw = SNNTorchNet()
        run_raw = lambda: raw(x)  # noqa: E731
        model, other = adapt(SNNTorchNet(), **SHAPE, input="B"), SNNTorchNet()
    with torch.no_grad():
        first, second = run_raw(), run_raw()
        assert (first - second).abs().max() > 1e-3  # the trap: state carried from the first pass
        if framework == "spikingjelly":
            other(x.unsqueeze(0).repeat(T, 1, 1, 1, 1))
            kept = other[2].v.clone()
        else:
            other(x)
            kept = other.lif.mem.clone()
        a, b = model(x), model(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    now = other[2].v if framework == "spikingjelly" else other.lif.mem
    assert torch.equal(now, kept)  # another model's neurons are not this model's to reset


# ------------------------------------------------------------------ CUDA backends ignore a Python surrogate
@pytest.mark.skipif(SJ2, reason="spikingjelly 2.x has no backend switch (an attacker's surrogate module takes "
                                 "its reference path, tested in test_foreign_reference.py)")
def test_an_attackers_copy_runs_the_torch_backend_not_cupys():
    """spikingjelly 0.0.0.0.14's cupy backend builds its backward from the surrogate's class, so an
    attacker's surrogate would be ignored there; the attacker's copy runs the torch backend."""
    model = adapt(sj_net(), **SHAPE)
    node = model[2] if isinstance(model, nn.Sequential) else model.get_submodule("2")
    node._backend = "cupy"  # as a model built for CUDA has it (set past the setter, which wants CuPy installed)
    attacker = attack_model(model, "assg")
    assert [v.module.backend for v in find_neurons(attacker)] == ["torch"]
    assert node.backend == "cupy"  # the evaluated model is not touched


# ------------------------------------------------------------------ time layouts
class BatchFirst(nn.Module):
    """The same network taking [B, T, C, H, W] and giving [B, T, classes]."""

    def __init__(self):
        super().__init__()
        self.net = sj_net()

    def forward(self, x):
        return self.net(x.transpose(0, 1)).transpose(0, 1)


class SingleStep(nn.Module):
    """The same network in spikingjelly's single-step mode, looping over T itself."""

    def __init__(self):
        super().__init__()
        self.net = sj_net()
        functional.set_step_mode(self.net, "s")

    def forward(self, x):  # [B, C, H, W]
        return torch.stack([self.net(x) for _ in range(T)])


def test_every_time_layout_gives_the_same_temporal_cka():
    """[T, B, ...] modules (multi-step), T calls of [B, ...] (a loop over T: a hook that kept only
    the last call would see only the last step) and a model taking [B, T, ...]: one network, one
    temporal CKA."""
    batches = [inputs(8, s)[0] for s in (2, 3)]
    tb = adapt(sj_net(), **SHAPE)
    results = {"TB": compare_time(tb, batches, ["0", "2"])}
    assert tb.time_layouts["0"] == "TB"
    bt = adapt(BatchFirst(), **SHAPE, input="BT", output="BT")
    results["BT"] = compare_time(bt, batches, ["net.0", "net.2"])
    steps = adapt(SingleStep(), **SHAPE, input="B")
    assert steps.time_layouts["net.2"] == "steps"
    results["steps"] = compare_time(steps, batches, ["net.0", "net.2"])
    for name in ("BT", "steps"):
        torch.testing.assert_close(results[name].matrix, results["TB"].matrix, rtol=0, atol=1e-9, equal_nan=True)
    assert not torch.isnan(results["TB"].matrix).all()


# ------------------------------------------------------------------ learnable neuron parameters
@pytest.mark.parametrize("framework", ["spikingjelly", "snntorch"])
def test_an_attack_changes_no_weight_neuron_parameter_or_running_statistic(framework):
    if framework == "spikingjelly":
        model = adapt(sj_net(neuron.ParametricLIFNode, init_tau=3.0, decay_input=False, detach_reset=True), **SHAPE)
    else:
        model = adapt(SNNTorchNet(learn_beta=True, learn_threshold=True), **SHAPE, input="B")
    learnable = [n for v in model.neuron_views() for n in v.parameters]
    assert learnable  # PLIF's w; snntorch's beta and threshold
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, _ = inputs(8)
    data = [(xi, int(yi)) for xi, yi in zip(x, model(x).mean(0).argmax(1))]
    run_attacks(model, data, AttackConfig(methods=("pgd", "sa-pgd"), steps=3, iterations=3, samples=None,
                                          batch_size=4, grad="assg"))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in model.parameters())  # the evaluated model is left as it was


# ------------------------------------------------------------------ snntorch surrogates are closures
def test_what_a_store_says_of_a_snntorch_surrogate_is_what_is_known():
    """The width of a snntorch surrogate is closed over: the store names the function that made
    the model's own, and an attacker's surrogate by the name the suite installed."""
    model = adapt(SNNTorchNet(), **SHAPE, input="B")
    x, _ = inputs(4)
    data = [(xi, 0) for xi in x]
    own = run_attacks(model, data, AttackConfig(methods=("fgsm",), grad="bptt", samples=None))
    assert own.config["gradient"]["surrogate"] == "snntorch atan (a closure: its width is not readable)"
    installed = run_attacks(model, data, AttackConfig(methods=("fgsm",), grad="bptt", samples=None,
                                                      attack_surrogates=("fast_sigmoid",)))
    assert installed.config["gradient"]["surrogate"] == "fast_sigmoid"
