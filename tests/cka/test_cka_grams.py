"""Grams formed inside forward hooks (suite.cka.grams) give the numbers of the feature-holding
path, and keep no layer's features.

Two checks of every comparison (ANN, SNN on the merged batch, SNN with a module called once
per time step; time mean, concat and each; models, layers and time comparisons):
- float64 models against a float64 reference written here: raw module outputs, time
  reductions by hand, Eq. 3 of the paper per layer pair, HSIC averaged over batches.
  Tolerance 1e-12: the features are the same float64 numbers on both sides, and the two
  HSIC routes are float64 sums of n² = 64 terms (n = 8) whose absolute values add up to at
  most 4.2 sqrt(HSIC_aa HSIC_bb) here, so they differ by <= 64 u 4.2 = 3e-14 in CKA on any
  BLAS (u = 2^-53; measured: 1e-16 to 4e-16).
- float32 models against the feature-holding path (`extract_features` then
  `MinibatchCKA.update` per batch), the documented float32-Gram-of-mean-centred-features
  arithmetic. Tolerance 1e-12 (measured: 0): the same float32 operations on the same values
  (`reduce_time`, the running sum of a per-step module adds in torch.mean's order), so the
  Grams agree to the bit and only float64 sums may differ in order (<= n² u = 7e-15).
"""

import weakref

import pytest
import torch
from torch import nn

from suite.cka import compare_layers, compare_models, compare_time, extract_features
from suite.cka.core import MinibatchCKA
from suite.cka.features import capture
from suite.cka.grams import LayerGrams
from suite.errors import SuiteError
from suite.models import ModelConfig, ModelSpec, build_model
from tests.cka.test_cka_core import centred64, hsic1_reference
from tests.cka.test_cka_features import B, T, PerStepSNN, TinySNN, loader, tiny_ann

F64 = torch.float64
TOL = 1e-12  # float64 routes: <= 3e-14 apart (module docstring)
TIMES = ("mean", "concat", "each")


# ------------------------------------------------------------------ float64 reference

def raw_outputs(model, x, names):
    """name -> the outputs of each call of that module in one forward pass (plain hooks)."""
    outs = {name: [] for name in names}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(lambda m, i, o, name=name: outs[name].append(o.detach()))
               for name in names]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return outs


def reference_entries(model, x, names, time):
    """The CKA entries [n, D] of the named layers, reduced over time by hand."""
    n, steps_of = x.shape[0], getattr(model, "timesteps", None) if getattr(model, "kind", "") == "snn" else None
    entries = []
    for name, calls in raw_outputs(model, x, names).items():
        if steps_of is None:
            entries.append(calls[0].flatten(1))
            continue
        if len(calls) == steps_of:  # one call per time step, each [n, ...]
            steps = [c.flatten(1) for c in calls]
        else:  # one call on the merged batch [T*n, ...], time-major
            steps = [calls[0][t * n:(t + 1) * n].flatten(1) for t in range(steps_of)]
        if time == "mean":
            entries.append(sum(steps) / steps_of)
        elif time == "concat":
            entries.append(torch.cat(steps, dim=1))
        else:
            entries += steps
    return entries


def reference_cka(model_a, model_b, batches, names_a, names_b, time):
    """CKA from Eq. 3 in float64: per-batch HSIC of every pair, averaged over batches."""
    sums = None
    for x in batches:
        Ka = [centred64(f) @ centred64(f).T for f in reference_entries(model_a, x, names_a, time)]
        Kb = [centred64(f) @ centred64(f).T for f in reference_entries(model_b, x, names_b, time)]
        ab = torch.tensor([[hsic1_reference(K, L) for L in Kb] for K in Ka], dtype=F64)
        aa = torch.tensor([hsic1_reference(K, K) for K in Ka], dtype=F64)
        bb = torch.tensor([hsic1_reference(L, L) for L in Kb], dtype=F64)
        sums = (ab, aa, bb) if sums is None else (sums[0] + ab, sums[1] + aa, sums[2] + bb)
    ab, aa, bb = sums
    return ab / torch.sqrt(aa[:, None] * bb[None, :])


def data(dtype, n_batches=3):
    return [x.to(dtype) for x, _ in loader(n=B * n_batches)]


SNNS = {"merged": (TinySNN, ["fc1", "lif1", "lif2"]), "per-step": (PerStepSNN, ["fc1", "lif1", "step"])}


@pytest.mark.parametrize("time", TIMES)
@pytest.mark.parametrize("snn_kind", SNNS)
def test_snn_vs_ann_equals_a_float64_reference(snn_kind, time):
    make, names = SNNS[snn_kind]
    snn, ann = make().double(), tiny_ann().double()
    batches = data(F64)
    got = compare_models(snn, ann, batches, layers_a=names, time=time)
    ref = reference_cka(snn, ann, batches, names, ["0", "2", "4"], time)
    assert got.matrix.shape == ref.shape == ((3 * T if time == "each" else 3), 3)
    assert (got.matrix - ref).abs().max() < TOL


@pytest.mark.parametrize("time", TIMES)
@pytest.mark.parametrize("snn_kind", SNNS)
def test_snn_layers_against_themselves_equal_a_float64_reference(snn_kind, time):
    make, names = SNNS[snn_kind]
    snn = make().double()
    batches = data(F64)
    got = compare_layers(snn, batches, layers=names, time=time)
    assert (got.matrix - reference_cka(snn, snn, batches, names, names, time)).abs().max() < TOL


def test_time_comparison_equals_a_float64_reference():
    snn = PerStepSNN().double()
    names = ["fc1", "lif1", "step"]
    batches = data(F64)
    got = compare_time(snn, batches, layers=names)
    for k, name in enumerate(names):
        ref = reference_cka(snn, snn, batches, [name], [name], "each")  # [T, T]
        assert (got.matrix[k] - ref).abs().max() < TOL


def test_ann_against_ann_equals_a_float64_reference():
    a, b = tiny_ann().double(), nn.Sequential(nn.Linear(6, 7), nn.Tanh(), nn.Linear(7, 4)).double()
    batches = data(F64)
    got = compare_models(a, b, batches, layers_a=["0", "2", "4"], layers_b=["0", "1", "2"])
    assert (got.matrix - reference_cka(a, b, batches, ["0", "2", "4"], ["0", "1", "2"], "mean")).abs().max() < TOL


# ------------------------------------------------------------------ float32: the feature-holding path

def holding_path(model_a, model_b, batches, names_a, names_b, time):
    """The path before Grams moved into the hooks: hold every layer's features, then update."""
    acc = None
    for x in batches:
        fa = extract_features(model_a, x, names_a, time)
        fb = extract_features(model_b, x, names_b, time)
        acc = acc or MinibatchCKA(len(fa), len(fb))
        acc.update(fa, fb)
    return acc


def twins():
    """ResNet-20 SNN (T=2) and its ANN twin with the same weights; a low threshold makes the
    untrained SNN's deep layers spike (silent layers would give NaN rows on both paths)."""
    torch.manual_seed(0)
    cfg = ModelConfig(spec=ModelSpec(arch="resnet20", kind="snn", width=0.25, timesteps=2, threshold=0.3),
                      num_classes=3, in_channels=1, input_size=8)
    snn = build_model(cfg).eval()
    ann = build_model(ModelConfig.from_dict({**cfg.to_dict(), "kind": "ann"})).eval()
    ann.load_state_dict(snn.state_dict())
    return snn, ann


def convs(name, module):
    return isinstance(module, nn.Conv2d)


@pytest.mark.parametrize("time", TIMES)
def test_resnet20_snn_vs_ann_every_conv_equals_the_holding_path(time):
    snn, ann = twins()
    g = torch.Generator().manual_seed(1)
    batches = [torch.rand(6, 1, 8, 8, generator=g) for _ in range(2)]
    got = compare_models(snn, ann, batches, layers_a=convs, layers_b=convs, time=time)
    names = [n for n, m in snn.named_modules() if convs(n, m)]
    assert len(names) == 21  # 19 convs and 2 shortcut projections
    old = holding_path(snn, ann, batches, names, names, time)
    assert not torch.isnan(got.matrix).any()
    assert (got.matrix - old.compute()).abs().max() < TOL
    assert (got.hsic_ab - old.hsic_ab).abs().max() <= TOL * old.hsic_ab.abs().max()


@pytest.mark.parametrize("time", TIMES)
@pytest.mark.parametrize("snn_kind", SNNS)
def test_float32_snn_equals_the_holding_path(snn_kind, time):
    make, names = SNNS[snn_kind]
    snn, ann = make(), tiny_ann()
    batches = data(torch.float32)
    got = compare_models(snn, ann, batches, layers_a=names, time=time)
    old = holding_path(snn, ann, batches, names, ["0", "2", "4"], time)
    assert (got.matrix - old.compute()).abs().max() < TOL


# ------------------------------------------------------------------ memory: nothing held

class Chain(nn.Module):
    """Four linear layers with tanh between them. At the end of its forward pass it counts
    how many of the linear layers' outputs are still alive (weak references to storages)."""

    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(6, 6) for _ in range(4)])
        self.alive = None

    def forward(self, x):
        refs = []
        for fc in self.fcs:
            y = fc(x)
            refs.append(weakref.ref(y.untyped_storage()))
            x = torch.tanh(y)
            del y
        self.alive = sum(r() is not None for r in refs)
        return x


def test_hooks_keep_no_layer_output_while_the_forward_pass_runs():
    model, x, names = Chain(), torch.randn(8, 6), ["fcs.0", "fcs.1", "fcs.2", "fcs.3"]
    with capture(model, names):
        model(x)
    assert model.alive == 4  # holding features: every output lives until the pass ends
    with LayerGrams(model, names) as grams:
        K = grams.run(x)
    assert model.alive == 0
    assert K.shape == (4, 64) and K.dtype == F64


def test_grams_hooks_are_removed_after_an_error():
    model = TinySNN()
    with pytest.raises(RuntimeError):
        with LayerGrams(model, ["fc1", "lif2"]) as grams:
            grams.run(torch.randn(B, 7))  # wrong input width
    assert all(not m._forward_hooks for m in model.modules())


def test_shared_module_is_an_error_in_the_streaming_path():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(6, 6), nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(self.act(x)))

    with pytest.raises(SuiteError, match="act ran 2 times"):
        compare_layers(Shared(), loader(), layers=["act"])


def test_layer_that_never_runs_is_named():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(6, 6), nn.Linear(6, 6)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(SuiteError, match="layer unused did not run"):
        compare_layers(Skips(), loader(), layers=["used", "unused"])


def test_nan_features_name_the_entry_in_the_hook():
    model = TinySNN()
    with torch.no_grad():
        model.fc2.bias[0] = float("nan")
    with pytest.raises(SuiteError, match=r"layer lif2@t0 contain NaN"):
        compare_layers(model, loader(), layers=["fc1", "lif2"], time="each")
