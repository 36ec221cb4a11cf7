"""Feature capture (hooks, layer names, SNN time reductions), comparisons and CKA result files.

Tolerances: CKA of a layer with itself is 1 to 1e-9; the same computation reached by two
code paths (paired loader vs one pass) agrees to 1e-12. Both sides of each comparison use the
same float32 Grams; only float64 HSIC sums of n² = 64 terms (n = B = 8) may run in another
order, which moves a CKA value by <= n² u = 7e-15 (u = 2^-53, Cauchy-Schwarz), on any BLAS.
"""

import h5py
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from suite.cka import (Options, capture, compare_layers, compare_models, compare_time, default_layers,
                       extract_features, layer_names, resolve_layers)
from suite.errors import SuiteError
from suite.results.cka import CKAResult
from suite.results.h5 import write_h5

T, B = 3, 8



class LeakyIntegrator(nn.Module):
    """Stand-in for a LIF layer: runs on the merged [T*B, D] batch, integrates over T."""

    def __init__(self, timesteps: int):
        super().__init__()
        self.timesteps = timesteps

    def forward(self, x):  # [T*B, D] -> [T*B, D]
        v = x.view(self.timesteps, -1, *x.shape[1:]).cumsum(dim=0)  # [T, B, D]
        return torch.tanh(v).flatten(0, 1)


class TinySNN(nn.Module):
    """Follows the suite SNN convention: kind "snn", timesteps T, modules see [T*B, ...]."""

    kind = "snn"

    def __init__(self, timesteps: int = T):
        super().__init__()
        self.timesteps = timesteps
        self.fc1, self.lif1 = nn.Linear(6, 8), LeakyIntegrator(timesteps)
        self.fc2, self.lif2 = nn.Linear(8, 5), LeakyIntegrator(timesteps)
        self.head = nn.Linear(5, 3)

    def forward(self, x):  # [B, 6] static input, repeated over T (direct encoding)
        b = x.shape[0]
        h = x.repeat(self.timesteps, 1)  # [T*B, 6], T-major
        h = self.lif2(self.fc2(self.lif1(self.fc1(h))))
        return self.head(h).view(self.timesteps, b, 3)  # [T, B, classes]


class PerStepSNN(TinySNN):
    """Same network, but the second neuron layer is called once per time step on [B, D]."""

    def __init__(self, timesteps: int = T):
        super().__init__(timesteps)
        self.step = nn.Tanh()

    def forward(self, x):
        b = x.shape[0]
        h = self.lif1(self.fc1(x.repeat(self.timesteps, 1)))
        z = self.fc2(h).view(self.timesteps, b, 5).cumsum(dim=0)  # [T, B, 5]
        h = torch.cat([self.step(z[t]) for t in range(self.timesteps)])  # T calls of [B, 5]
        return self.head(h).view(self.timesteps, b, 3)


def tiny_ann() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3))


def loader(n: int = 24, batch_size: int = B, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(n, 6, generator=g), torch.zeros(n, dtype=torch.long))
    return DataLoader(data, batch_size=batch_size, shuffle=False)


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


# ------------------------------------------------------------------ layer names

def test_default_layers_are_leaf_modules_with_parameters():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.Sequential(nn.Flatten(), nn.Linear(2, 2)))
    assert default_layers(model) == ["0", "1", "3.1"]


def test_layers_by_pattern_callable_and_comma_list():
    model = TinySNN()
    assert resolve_layers(model, "lif*") == ["lif1", "lif2"]
    assert resolve_layers(model, "fc1, lif2") == ["fc1", "lif2"]
    assert resolve_layers(model, lambda name, m: isinstance(m, LeakyIntegrator)) == ["lif1", "lif2"]


class WithSets(TinySNN):
    """TinySNN naming two layer sets, as the suite's twins do (`layer_sets`)."""

    def layer_sets(self):
        return {"spiking": ("lif1", "lif2"), "head": ("head",)}


def test_layer_sets_by_name_mixed_with_names_and_patterns_without_repeats():
    model = WithSets()
    assert resolve_layers(model, "@spiking") == ["lif1", "lif2"]
    assert resolve_layers(model, ["@head", "lif2", "@spiking", "fc?"]) == ["head", "lif2", "lif1", "fc1", "fc2"]
    with pytest.raises(SuiteError) as err:
        resolve_layers(model, "@blocks")
    assert str(err.value) == "unknown layer set '@blocks' of WithSets; choose one of: @spiking, @head"
    with pytest.raises(SuiteError) as err:
        resolve_layers(TinySNN(), "@spiking")
    assert str(err.value) == "unknown layer set '@spiking' of TinySNN; choose one of: none (it names no sets)"
    with pytest.raises(SuiteError, match=r"^unknown layer 'fc' in WithSets"):
        resolve_layers(model, "fc")  # a plain name that is no module: not a pattern, so no match


def test_unknown_layer_error_lists_valid_names():
    with pytest.raises(SuiteError, match=r"unknown layer 'lif3'.*did you mean.*valid layers: fc1, lif1"):
        resolve_layers(TinySNN(), ["fc1", "lif3"])


def test_unknown_layer_error_truncates_a_long_list():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(40)])
    with pytest.raises(SuiteError, match=r"valid layers: 0, 1, 2, .*\(28 more\)") as err:
        resolve_layers(model, ["nope"])
    assert "39" not in str(err.value)


# ------------------------------------------------------------------ hooks

def test_hooks_are_removed_after_success():
    model = TinySNN()
    with capture(model, ["fc1", "lif2"]) as out:
        model(torch.randn(B, 6))
    assert [o[0].shape for o in out.values()] == [(T * B, 8), (T * B, 5)]
    assert no_hooks(model)


def test_hooks_are_removed_after_an_exception():
    model = TinySNN()
    with pytest.raises(RuntimeError):
        with capture(model, ["fc1", "lif2"]):
            model(torch.randn(B, 7))  # wrong input width
    assert no_hooks(model)
    with pytest.raises(SuiteError):
        extract_features(model, torch.randn(B, 6), ["fc1", "nope"])
    assert no_hooks(model)


def test_tuple_output_uses_the_first_tensor():
    class WithState(nn.Module):
        def forward(self, x):
            return x * 2, {"state": x}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = WithState()

        def forward(self, x):
            return self.cell(x)[0]

    x = torch.randn(5, 3)
    (feat,) = extract_features(Net(), x, ["cell"])
    assert torch.equal(feat, 2 * x)


def test_shared_module_called_twice_is_an_error():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(4, 4), nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(self.act(x)))

    with pytest.raises(SuiteError, match="act ran 2 times"):
        extract_features(Shared(), torch.randn(5, 4), ["act"])


# ------------------------------------------------------------------ SNN time reductions

def test_time_reductions_shapes_and_values():
    model, x = TinySNN(), torch.randn(B, 6)
    with capture(model, ["lif1"]) as out:
        model(x)
    raw = out["lif1"][0].view(T, B, 8)  # [T, B, D]

    (mean,) = extract_features(model, x, ["lif1"], time="mean")
    (concat,) = extract_features(model, x, ["lif1"], time="concat")
    each = extract_features(model, x, ["lif1"], time="each")
    assert mean.shape == (B, 8) and concat.shape == (B, T * 8) and [e.shape for e in each] == [(B, 8)] * T
    assert torch.allclose(mean, raw.mean(0))
    assert torch.equal(concat[2], torch.cat([raw[t, 2] for t in range(T)]))  # sample 2: t0 | t1 | t2
    assert all(torch.equal(each[t], raw[t]) for t in range(T))
    assert layer_names(["fc1", "lif1"], T, "each") == ["fc1@t0", "fc1@t1", "fc1@t2", "lif1@t0", "lif1@t1", "lif1@t2"]


def test_module_called_once_per_time_step_is_stacked_t_major():
    model, x = PerStepSNN(), torch.randn(B, 6)
    each = extract_features(model, x, ["step"], time="each")
    z = model.fc2(model.lif1(model.fc1(x.repeat(T, 1)))).view(T, B, 5).cumsum(0)
    assert all(torch.allclose(each[t], torch.tanh(z[t])) for t in range(T))


def test_ann_ignores_time():
    (feat,) = extract_features(tiny_ann(), torch.randn(B, 6), ["2"], time="each")
    assert feat.shape == (B, 5)


# ------------------------------------------------------------------ comparisons

def test_model_against_itself_has_unit_diagonal_and_one_forward_pass():
    model = tiny_ann().train()
    calls, ticks = [], []
    model.register_forward_pre_hook(lambda m, i: calls.append(1))
    result = compare_models(model, model, loader(), stream=Options(progress=ticks.append))
    assert result.layers_a == result.layers_b == ["0", "2", "4"]
    # <= n² u = 7e-15 from 1 and from symmetric (module docstring); a mis-paired entry is off by > 1e-3
    # (rtol=0: torch.allclose's default rtol 1e-5 would make these 1e-5 checks)
    assert torch.allclose(result.matrix.diagonal(), torch.ones(3, dtype=torch.float64), atol=1e-9, rtol=0)
    assert torch.allclose(result.matrix, result.matrix.T, atol=1e-12, rtol=0)
    assert result.n_samples == 24 and len(calls) == 3 and ticks == [1, 1, 1]
    assert model.training  # mode restored


def test_snn_against_ann_and_paired_loader_agree():
    snn, ann = TinySNN(), tiny_ann()
    one = compare_models(snn, ann, loader(), layers_a=["lif1", "lif2"], time="each")
    assert one.matrix.shape == (2 * T, 3) and one.layers_a[:2] == ["lif1@t0", "lif1@t1"]
    paired = compare_models(snn, ann, loader(), layers_a=["lif1", "lif2"], time="each", loader_b=loader())
    assert torch.allclose(one.matrix, paired.matrix, atol=1e-12, rtol=0)  # the same batches and Grams: <= n² u


def test_paired_loaders_of_different_length_are_an_error():
    with pytest.raises(SuiteError, match="different numbers of batches"):
        compare_models(tiny_ann(), tiny_ann(), loader(24), loader_b=loader(16))


def test_small_final_batch_is_dropped_and_recorded():
    result = compare_layers(tiny_ann(), loader(n=19, batch_size=8))  # 8, 8, 3
    assert result.n_samples == 16 and result.n_batches == 2 and result.config["n_dropped"] == 3


def test_small_batch_before_the_last_is_an_error():
    batches = [(torch.randn(n, 6),) for n in (8, 3, 8)]
    with pytest.raises(SuiteError, match="n >= 4"):
        compare_layers(tiny_ann(), batches)


def test_compare_time_gives_layer_by_time_matrices():
    result = compare_time(TinySNN(), loader(), layers=["fc1", "lif1", "lif2"], stream=Options(n_boot=50))
    assert result.matrix.shape == (3, T, T) and result.hsic_aa.shape == (3, T)
    # diagonal: <= n² u = 7e-15 from 1; fc1's steps are equal inputs (static), so even if the float32 matmul
    # rounded rows differently (~1e-7) CKA, a cosine, would move by its square: far below 1e-9
    assert torch.allclose(result.matrix.diagonal(dim1=1, dim2=2), torch.ones(3, T, dtype=torch.float64), atol=1e-9,
                          rtol=0)
    assert torch.allclose(result.matrix[0], torch.ones(T, T, dtype=torch.float64), atol=1e-9, rtol=0)  # static input
    assert result.matrix[2, 0, 2] < 0.9999  # integration makes time steps differ
    assert result.ci_lo.shape == (3, T, T)


def test_compare_time_needs_an_snn():
    with pytest.raises(SuiteError, match="needs an SNN"):
        compare_time(tiny_ann(), loader())


# ------------------------------------------------------------------ result files

def test_result_save_load_round_trip(tmp_path):
    result = compare_models(TinySNN(), tiny_ann(), loader(), layers_a="lif*", stream=Options(n_boot=20))
    path = result.save(tmp_path / "r.h5", config={"model_a": "snn.pt"}, command="suite cka models")
    back = CKAResult.load(path)
    assert torch.equal(back.matrix, result.matrix) and torch.equal(back.hsic_bb, result.hsic_bb)
    assert torch.equal(back.ci_hi, result.ci_hi)
    assert back.layers_a == ["lif1", "lif2"] and back.layers_b == ["0", "2", "4"]
    assert back.n_samples == 24 and back.compare == "models" and back.config["model_a"] == "snn.pt"
    with h5py.File(path) as f:
        assert f["cka"].shape == (2, 3) and f.attrs["kind"] == "cka" and f.attrs["command"] == "suite cka models"


def test_time_result_keeps_the_layer_axis(tmp_path):
    result = compare_time(TinySNN(), loader(), layers=["lif1", "lif2"])
    back = CKAResult.load(result.save(tmp_path / "t.h5"))
    assert back.matrix.shape == (2, T, T) and back.hsic_ab.shape == (2, T, T) and back.compare == "time"


def test_failed_write_leaves_no_file(tmp_path):
    result = compare_layers(tiny_ann(), loader())
    result.hsic_aa = None  # cannot be written
    with pytest.raises(AttributeError):
        result.save(tmp_path / "r.h5")
    assert list(tmp_path.iterdir()) == []


def test_missing_corrupt_or_foreign_files_are_suite_errors(tmp_path):
    with pytest.raises(SuiteError, match="not found"):
        CKAResult.load(tmp_path / "none.h5")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(SuiteError, match="corrupt"):
        CKAResult.load(tmp_path / "bad.h5")
    write_h5(tmp_path / "attack.h5", "attack", {}, lambda f: None, command="x")
    with pytest.raises(SuiteError, match="expected 'cka'"):
        CKAResult.load(tmp_path / "attack.h5")
    write_h5(tmp_path / "half.h5", "cka", {}, lambda f: f.create_dataset("cka", data=[1.0]), command="x")
    with pytest.raises(SuiteError, match="not a complete CKA result"):
        CKAResult.load(tmp_path / "half.h5")


# ------------------------------------------------------------------ edge cases (mutation survivors)

def test_names_list_of_exactly_twelve_has_no_more_and_thirteen_says_one_more():
    for count, tail in [(12, r"valid layers: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11$"),
                        (13, r"valid layers: 0, 1, .*, 11, \.\.\. \(1 more\)$")]:
        with pytest.raises(SuiteError, match=tail):
            resolve_layers(nn.Sequential(*[nn.Linear(2, 2) for _ in range(count)]), ["zzzz"])


def test_unknown_layer_hint_lists_three_close_names_or_none():
    model = nn.Sequential()
    for i in range(1, 6):
        model.add_module(f"layer{i}", nn.Linear(2, 2))
    with pytest.raises(SuiteError, match=r"in Sequential \(did you mean layer\d, layer\d, layer\d\?\); valid"):
        resolve_layers(model, "layer")  # five names are close; the hint shows three
    with pytest.raises(SuiteError, match=r"^unknown layer 'qqqq' in TinySNN; valid layers: fc1, lif1"):
        resolve_layers(TinySNN(), "qqqq")  # nothing close: no hint


def test_callable_spec_sees_each_name_and_an_empty_selection_is_an_error():
    model = TinySNN()
    assert resolve_layers(model, lambda name, m: name.startswith("fc")) == ["fc1", "fc2"]
    with pytest.raises(SuiteError, match=r"no layers selected in TinySNN; valid layers: fc1, lif1, fc2, lif2, head$"):
        resolve_layers(model, lambda name, m: False)


def test_default_layers_use_the_models_representation_layers():
    model = TinySNN()
    model.representation_layers = lambda: ("lif1", "head")
    assert default_layers(model) == ["lif1", "head"]


def test_default_layers_skip_a_module_with_own_parameters_and_children():
    class Scaled(nn.Module):  # a parameter of its own and a child: not a leaf
        def __init__(self):
            super().__init__()
            self.scale, self.fc = nn.Parameter(torch.ones(2)), nn.Linear(2, 2)

    assert default_layers(nn.Sequential(Scaled(), nn.ReLU(), nn.Linear(2, 2))) == ["0.fc", "2"]


def test_output_without_a_tensor_is_an_error_naming_its_type():
    class Dict(nn.Module):
        def forward(self, x):
            return {"out": x}

    net = nn.Sequential(Dict())
    with pytest.raises(SuiteError, match="module output of type dict holds no tensor"):
        extract_features(net, torch.randn(5, 3), ["0"])


def test_reduce_time_defaults_to_the_mean_and_checks_its_input():
    from suite.cka.features import check_time_mode, reduce_time
    out = torch.arange(24.0).view(6, 4)  # T=3, B=2, D=4: rows t0b0, t0b1, t1b0, ...
    (mean,) = reduce_time("lif", [out], 3)
    assert torch.equal(mean, torch.tensor([[8.0, 9, 10, 11], [12, 13, 14, 15]]))  # (0+8+16)/3, ...
    with pytest.raises(SuiteError, match="layer lif did not run in the forward pass"):
        reduce_time("lif", [], 3)
    with pytest.raises(SuiteError, match=r"^layer lif ran 2 times in one forward pass \(a shared module\?\); its output is "
                                          r"ambiguous, pick a module that runs once$"):
        reduce_time("lif", [out, out], 3)  # neither once nor T times
    with pytest.raises(SuiteError, match=r"layer lif: output of 7 rows is not T\*B with T=3"):
        reduce_time("lif", [torch.zeros(7, 4)], 3)
    with pytest.raises(SuiteError, match=r"unknown --time 'sum'; choose one of mean, concat, each"):
        check_time_mode("sum")


def test_timesteps_of_snns_anns_and_broken_models():
    from suite.cka.features import timesteps

    def model(**attrs):
        m = nn.Linear(2, 2)
        for k, v in attrs.items():
            setattr(m, k, v)
        return m

    assert timesteps(model(kind="snn", timesteps=1)) == 1
    assert timesteps(model(kind="snn", timesteps=4)) == 4
    assert timesteps(model(timesteps=3)) == 3  # no kind: a module with T is an SNN
    assert timesteps(model(kind="ann", timesteps=4)) is None  # an ANN twin may carry T; it is ignored
    assert timesteps(model()) is None
    for bad in (0, 2.5, None):
        with pytest.raises(SuiteError, match=rf"SNN model has timesteps={bad!r}; expected a positive integer"):
            timesteps(model(kind="snn", timesteps=bad))
