"""The fused LIF (`LIFScan`) against the reference: the per-step loop, unrolled through autograd.

The reference below is the straightforward implementation the fused one replaces: one small
autograd graph per time step, with the surrogate's own backward. Both fused implementations,
the C kernel (lif_kernel.c, CPU float32) and the PyTorch-ops path, must give bit-identical
spikes and the same input gradients for every surrogate, both reset settings, T = 1..4, and
leaks / thresholds that round in float32. Gradient tolerance: 1e-6 relative, plus 1e-6 of the
largest gradient absolute (the kernel's expf can differ from PyTorch's exp by an ulp, and the
reset-in-graph term G - beta u g cancels); through a whole model, 2e-5 of the largest, float32's
own error there (test_model_matches_reference_lif_end_to_end).
"""

from __future__ import annotations

import os

import pytest
import torch
from snntorch import surrogate as sg

from suite.errors import SuiteError
from suite.models import LIF, SURROGATES, ModelConfig, ModelSpec, build_model, lif_kernel, mean_logits
from suite.models.firing import FiringRates
from suite.models.neurons import SURROGATE_KERNEL, get_surrogate, surrogate_grad
from suite.train.loop import train_step


def assert_grad_close(new: torch.Tensor, ref: torch.Tensor) -> None:
    torch.testing.assert_close(new, ref, rtol=1e-6, atol=1e-6 * max(1.0, ref.abs().max().item()))


def reference_lif(lif: LIF, x: torch.Tensor) -> torch.Tensor:
    """u_t = beta u_{t-1} (1 - s_{t-1}) + x_t, s_t = spike_fn(u_t - threshold): plain autograd."""
    T = lif.timesteps
    xs = x.view(T, x.shape[0] // T, *x.shape[1:])
    u = torch.zeros_like(xs[0])
    s = torch.zeros_like(xs[0])
    spikes = []
    for t in range(T):
        keep = 1.0 - (s.detach() if lif.detach_reset else s)
        u = lif.beta * u * keep + xs[t]
        s = lif.spike_fn(u - lif.threshold)
        spikes.append(s)
    return torch.stack(spikes).view_as(x)


def _inputs(T: int, seed: int, shape=(3, 4, 5, 5)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    B, *rest = shape
    # around the threshold, so every time step has spikes and non-spikes
    x = torch.randn(T * B, *rest, generator=g) * 0.8 + 0.6
    x[0, 0, 0, :2] = torch.tensor([1.0, 0.3])  # exactly at the two thresholds used below
    return x


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("T", [1, 2, 3, 4])
@pytest.mark.parametrize("tau,threshold", [(2.0, 1.0), (3.0, 0.3)])
def test_fused_lif_matches_reference(surrogate, detach_reset, T, tau, threshold, path):
    lif = LIF(T, tau=tau, threshold=threshold, surrogate=surrogate, detach_reset=detach_reset)
    assert_matches_reference(lif, _inputs(T, seed=T))


def assert_matches_reference(lif: LIF, x: torch.Tensor) -> None:
    """lif(x) against `reference_lif`: spikes exactly (both spikes and silence among them),
    dL/dx for a random dL/ds to float rounding."""
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(99))
    x_ref = x.clone().requires_grad_(True)
    out_ref = reference_lif(lif, x_ref)
    out_ref.backward(grad_out)

    x_new = x.clone().requires_grad_(True)
    out_new = lif(x_new)
    assert out_new.grad_fn is not None and "LIFScan" in type(out_new.grad_fn).__name__
    out_new.backward(grad_out)

    assert out_new.shape == x.shape and out_new.dtype == x.dtype
    assert torch.equal(out_new, out_ref)  # spikes: exactly
    assert 0 < out_new.mean() < 1  # both spikes and silence: the test means something
    assert_grad_close(x_new.grad, x_ref.grad)


@pytest.mark.parametrize("detach_reset", [True, False])
def test_a_single_sample_keeps_its_time_recurrence(detach_reset, path):
    """Batch of one (x [T*1, ...]): the time axis, not the batch axis, decides whether there
    is a recurrence to run backwards."""
    lif = LIF(3, tau=3.0, threshold=0.3, surrogate="atan", detach_reset=detach_reset)
    assert_matches_reference(lif, _inputs(3, seed=5, shape=(1, 4, 5, 5)))


def _surrogate_autograd(surrogate):
    """(v, G, f'(v) G from the snntorch surrogate's own autograd) on a grid with the edge cases."""
    v = torch.cat([torch.linspace(-60, 60, 2001), torch.tensor([0.0, -0.0, 1e-8, -1e-8, 1.0])])
    grad = torch.randn(v.shape, generator=torch.Generator().manual_seed(0))
    leaf = v.clone().requires_grad_(True)
    get_surrogate(surrogate)(leaf).backward(grad)
    return v, grad, leaf.grad


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_derivative_table_matches_the_surrogates_autograd(surrogate):
    v, grad, expected = _surrogate_autograd(surrogate)
    out, buf = torch.empty_like(v), torch.empty_like(v)
    v_before = v.clone()
    surrogate_grad(surrogate)(v, grad, out, buf)
    assert torch.equal(v, v_before)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_kernel_derivative_matches_the_surrogates_autograd(surrogate, needs_lif_kernel):
    v, grad, expected = _surrogate_autograd(surrogate)
    # the kernel's copy of the formula: T = 1 has no recurrence, so dL/dx = f'(v) G
    kernel = lif_kernel.backward(v.view(1, -1), grad.view(1, -1), 0.5, 1.0, True, SURROGATE_KERNEL[surrogate])
    torch.testing.assert_close(kernel.view(-1), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("how", ["assigned", "registered"])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_spike_function_outside_the_table_uses_its_own_autograd(detach_reset, how, monkeypatch):
    if how == "assigned":
        lif = LIF(3, detach_reset=detach_reset)
        lif.spike_fn = sg.fast_sigmoid(slope=7)
    else:  # a name in SURROGATES with no derivative in the table (surrogate_grad)
        monkeypatch.setitem(SURROGATES, "custom", lambda: sg.fast_sigmoid(slope=7))
        lif = LIF(3, detach_reset=detach_reset, surrogate="custom")
    x = _inputs(3, seed=6)
    x_new, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    g = torch.randn(x.shape)
    out_new, out_ref = lif(x_new), reference_lif(lif, x_ref)
    out_new.backward(g), out_ref.backward(g)
    assert torch.equal(out_new, out_ref)
    torch.testing.assert_close(x_new.grad, x_ref.grad, rtol=1e-6, atol=1e-6)


def test_reset_in_graph_changes_the_gradient():
    x = _inputs(4, seed=0)
    grads = []
    for detach in (True, False):
        xi = x.clone().requires_grad_(True)
        LIF(4, detach_reset=detach)(xi).sum().backward()
        grads.append(xi.grad)
    assert not torch.allclose(*grads)


def test_no_grad_forward_gives_the_same_spikes(path):
    lif = LIF(3)
    x = _inputs(3, seed=1)
    with torch.no_grad():
        fast = lif(x)
    assert torch.equal(fast, lif(x.clone().requires_grad_(True)).detach())
    assert torch.equal(fast, reference_lif(lif, x))


def test_inputs_and_incoming_gradients_are_not_modified(path):
    lif = LIF(4, surrogate="ste")  # ste's backward passes the incoming gradient straight on
    x = _inputs(4, seed=2).requires_grad_(True)
    x_before = x.detach().clone()
    grad_out = torch.randn(x.shape)
    grad_before = grad_out.clone()
    lif(x).backward(grad_out)
    assert torch.equal(x.detach(), x_before)
    assert torch.equal(grad_out, grad_before)
    # an expanded (stride-0) incoming gradient, as from .sum().backward()
    x.grad = None
    lif(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_channels_last_input():
    lif = LIF(2)
    x = _inputs(2, seed=3)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    xr = x.clone().requires_grad_(True)
    out_c, out_r = lif(xc), reference_lif(lif, xr)
    assert torch.equal(out_c, out_r)
    g = torch.randn(x.shape)
    out_c.backward(g), out_r.backward(g)
    torch.testing.assert_close(xc.grad, xr.grad, rtol=1e-6, atol=1e-6)


def test_saves_one_membrane_tensor_for_backward(path):
    x = _inputs(4, seed=4).requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = LIF(4)(x)
    assert [tuple(t.shape) for t in saved] == [(4, 3, 4, 5, 5)]  # v = u - threshold, [T, B, ...]
    assert saved[0].dtype == x.dtype
    del out


def test_double_backward_is_an_error_not_a_wrong_answer():
    """Only first derivatives: nothing in the suite differentiates twice (no create_graph, no
    torch.func transforms), so a second derivative raises instead of silently being zero."""
    x = _inputs(2, seed=5).requires_grad_(True)
    for loss in (lambda out: out.sum(), lambda out: (out * x).sum()):
        (g,) = torch.autograd.grad(loss(LIF(2)(x)), x, create_graph=True)
        with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
            g.sum().backward()


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "triangular"])
def test_model_matches_reference_lif_end_to_end(surrogate, tiny_cfg, monkeypatch, path):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(surrogate=surrogate, width=0.5, timesteps=3))
    x = torch.rand(4, 1, 16, 16)
    x_before = x.clone()

    def run():
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        mean_logits(out, model).logsumexp(1).sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        return out.detach(), xi.grad, grads

    out_new, gx_new, gp_new = run()
    monkeypatch.setattr(LIF, "forward", reference_lif)
    out_ref, gx_ref, gp_ref = run()
    assert torch.equal(x, x_before)
    torch.testing.assert_close(out_new, out_ref, rtol=1e-6, atol=1e-6)
    # Input gradients here reach ~2e4 (sigmoid: slope 25 per layer), and float32's own error on them
    # (against a float64 run of the same weights) is up to 1.1e-5 of the largest entry, 6e-6
    # norm-wise: ~180 float32 ulps of amplification. The kernel and the reference are two float32
    # routes (expf vs torch's exp), each that far from the exact gradient at worst: 2e-5 of the
    # largest entry of each tensor (measured apart: 6e-7 to 1.2e-6, MKL_ENABLE_INSTRUCTIONS=AVX2
    # the larger). A wrong rule in the kernel is off by O(1); the per-neuron tests above hold 1e-6.
    for a, b in zip([gx_new, *gp_new], [gx_ref, *gp_ref]):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-5 * b.abs().max().item())


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("threads", [1, 3])
def test_kernel_equals_torch_path_across_threads(detach_reset, threads, monkeypatch, needs_lif_kernel):
    """The kernel splits elements over threads in 64-byte-aligned ranges: ragged sizes (not a
    multiple of the alignment or of its 256-element blocks) must give the PyTorch path's result."""
    if threads > 1 and "MUTANT_UNDER_TEST" in os.environ:
        # mutmut forks each mutant's test run from a process that has run this test: GNU OpenMP
        # is not fork-safe, and the forked child's first 3-thread region waits forever (the
        # thread split is C, which mutmut does not mutate; ordinary runs keep the test)
        pytest.skip("OpenMP threads in a process forked by mutmut hang")
    monkeypatch.setattr(lif_kernel, "MIN_PER_THREAD", 64)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    lif = LIF(4, tau=3.0, surrogate="sigmoid", detach_reset=detach_reset)
    x = torch.randn(4 * 7, 3, 11, 13, generator=torch.Generator().manual_seed(1)) + 0.7
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))

    def run():
        xi = x.clone().requires_grad_(True)
        out = lif(xi)
        out.backward(g)
        return out.detach(), xi.grad

    s_k, g_k = run()
    with lif_kernel.switched_off():
        s_t, g_t = run()
    assert torch.equal(s_k, s_t)
    assert_grad_close(g_k, g_t)


@pytest.fixture
def fresh_library():
    """`lif_kernel.library()` loads again under the test's environment, and once more after it."""
    lif_kernel.library.cache_clear()
    yield
    lif_kernel.library.cache_clear()


@pytest.mark.parametrize("cc", ["no-such-compiler", "false"])
def test_without_a_working_compiler_the_torch_path_runs_with_a_warning(cc, tmp_path, monkeypatch, fresh_library):
    monkeypatch.setenv("CC", cc)
    monkeypatch.setenv("SUITE_CACHE", str(tmp_path))
    with pytest.warns(RuntimeWarning, match="fused LIF kernel unavailable"):
        assert lif_kernel.library() is None
    x = _inputs(2, seed=7)
    assert torch.equal(LIF(2)(x), reference_lif(LIF(2), x))
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "suite"])  # no half-written library


def test_kernel_can_be_switched_off(monkeypatch, fresh_library):
    monkeypatch.setenv("SUITE_LIF_KERNEL", "0")
    assert lif_kernel.library() is None and not lif_kernel.usable(torch.zeros(2))


def test_backward_takes_the_path_forward_took(monkeypatch, needs_lif_kernel):
    """A forward under `switched_off` is differentiated on the PyTorch path too, even when
    backward runs after the block (benchmarks time the two paths this way)."""
    calls = []
    real = lif_kernel.backward
    monkeypatch.setattr(lif_kernel, "backward", lambda *a: calls.append(1) or real(*a))
    x = _inputs(3, seed=8).requires_grad_(True)
    with lif_kernel.switched_off():
        out = LIF(3)(x)
    out.sum().backward()
    assert calls == []
    LIF(3)(x).sum().backward()
    assert calls == [1]


def test_kernel_builds_without_openmp(needs_lif_kernel, tmp_path, monkeypatch, fresh_library):
    """A compiler without -fopenmp (Apple clang) still gets the kernel, single-threaded."""
    monkeypatch.setenv("SUITE_CACHE", str(tmp_path))
    monkeypatch.setattr(lif_kernel, "OPENMP", "-fno-such-flag-openmp")
    assert lif_kernel.library() is not None
    x = _inputs(3, seed=9)
    assert torch.equal(LIF(3)(x), reference_lif(LIF(3), x))
    assert len(list((tmp_path / "suite").glob("lif_kernel-*.so"))) == 1


def test_triangular_derivative_at_a_threshold_other_than_one():
    """The table uses threshold 1, where -2 * t and -2 / t coincide; at t = 0.5 they do not:
    the factory must match snntorch's Triangular(threshold=0.5) backward."""
    from suite.models.neurons import _triangular_grad
    v = torch.tensor([-1.0, -0.2, 0.0, 0.3, 2.0])
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    leaf = v.clone().requires_grad_(True)
    sg.triangular(threshold=0.5)(leaf).backward(g)
    out, buf = torch.empty_like(v), torch.empty_like(v)
    _triangular_grad(0.5)(v, g, out, buf)
    assert torch.equal(out, leaf.grad)
    assert torch.equal(out, torch.tensor([0.5, 1.0, -1.5, -2.0, -2.5]))  # by hand: 0.5 g below 0, -0.5 g at/above


def test_unknown_surrogate_lists_the_valid_names():
    with pytest.raises(SuiteError) as caught:
        get_surrogate("nope")
    assert str(caught.value) == ("unknown surrogate 'nope'; choose one of: atan, fast_sigmoid, sigmoid, "
                                 "spike_rate_escape, ste, triangular")


def test_lif_defaults_are_tau_2_threshold_1_atan_and_a_detached_reset():
    """LIF(T) alone is the common SNN setting (leak 1 - 1/2, threshold 1, arctan surrogate,
    reset outside the graph): same spikes and input gradients as those settings spelled out,
    on inputs where tau, threshold and the reset mode each change the result."""
    x = torch.linspace(-0.5, 2.5, 3 * 4 * 5).reshape(3 * 4, 5)

    def run(lif):
        xi = x.clone().requires_grad_(True)
        out = lif(xi)
        out.backward(torch.linspace(1.0, 2.0, out.numel()).reshape(out.shape))
        return out.detach(), xi.grad

    default = run(LIF(3))
    spelled = run(LIF(3, tau=2.0, threshold=1.0, surrogate="atan", detach_reset=True))
    assert all(torch.equal(a, b) for a, b in zip(default, spelled))
    for other in (dict(tau=3.0), dict(threshold=2.0), dict(surrogate="sigmoid"), dict(detach_reset=False)):
        changed = run(LIF(3, **{**dict(tau=2.0, threshold=1.0, surrogate="atan", detach_reset=True), **other}))
        assert not all(torch.equal(a, b) for a, b in zip(default, changed)), other


def test_lif_tau_of_one_means_no_memory_and_below_one_is_refused():
    """tau = 1 is the smallest leak a model may have; tau < 1 (leak 1 - 1/tau outside [0, 1)) is
    refused by the model's spec, the one place that checks --tau, before any LIF is built."""
    lif = LIF(2, tau=1.0)  # leak 1 - 1/1 = 0: each step sees only its own input
    assert lif.beta == 0.0
    x = torch.tensor([[0.6], [0.6]])  # below threshold 1 at every step, summed it would not be
    assert torch.equal(lif(x), torch.zeros(2, 1))
    assert ModelSpec(tau=1.0).tau == 1.0
    with pytest.raises(SuiteError) as caught:
        ModelSpec(tau=0.5)
    assert str(caught.value) == "--tau must be a finite number in [1, 1e+06], got 0.5"



# ------------------------------------------------------------------ the LIF on CUDA's data paths, run on CPU
# (moved from tests/train/test_device_paths.py: the LIF layer under bfloat16 autocast and on
# channels_last activations, and the firing rates counted from its spikes)


def _lif_dtypes(model: torch.nn.Module) -> list[torch.dtype]:
    """The dtype of every LIF layer's input, recorded as the model runs."""
    seen = []
    for m in model.modules():
        if isinstance(m, LIF):
            m.register_forward_hook(lambda mod, args, out: seen.append(args[0].dtype))
    return seen


def test_bf16_autocast_step_runs_the_lif_in_bf16_and_keeps_float32_weights():
    """The CUDA AMP step (torch.autocast to bfloat16) run on CPU: the LIF layers see bfloat16,
    weights and gradients stay float32 and move."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=ModelSpec(arch="resnet20", kind="snn", width=0.25, timesteps=2,
                                                   threshold=0.25), in_channels=1, input_size=8))
    dtypes = _lif_dtypes(model)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(8, 1, 8, 8, generator=gen), torch.randint(0, 10, (8,), generator=gen)
    before = [p.detach().clone() for p in model.parameters()]
    loss, _ = train_step(model, model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, tet=False,
                         autocast_dtype=torch.bfloat16)
    change = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())
    assert torch.isfinite(loss) and change.abs().max() > 0


def test_lif_takes_channels_last_input():
    """On CUDA activations are channels_last; the LIF must give the same spikes and
    gradients as for contiguous input (gradient tolerance 1e-6)."""
    lif = LIF(3, tau=2.0, threshold=0.5)
    x = torch.rand(3 * 4, 5, 6, 7, generator=torch.Generator().manual_seed(2)) * 1.2  # [T*B, C, H, W]
    a = x.clone().requires_grad_()
    b = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_()
    sa, sb = lif(a), lif(b)
    assert torch.equal(sa, sb) and 0 < sa.mean() < 1
    g = torch.rand_like(sa)
    sa.backward(g)
    sb.backward(g.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=0)


def test_firing_rate_is_the_fraction_of_spikes():
    """LIF with T=2, tau=2 (leak 0.5), threshold 1 on constant inputs, worked by hand:
    x = 0.6: u0 = 0.6, u1 = 0.3 + 0.6 = 0.9: no spike.  x = 0.7: u0 = 0.7, u1 = 1.05: one spike
    at t=1, rate 1/2. Half the neurons at each value: (0 + 1/2) / 2 = 0.25."""
    model = torch.nn.Sequential(torch.nn.Identity(), LIF(2, tau=2.0, threshold=1.0))
    x = torch.tensor([0.6, 0.7]).repeat(2 * 3, 1)  # [T*B, 2] with B=3
    rates = FiringRates(model)
    model(x)
    assert rates.take() == {"1": pytest.approx(0.25, abs=1e-12)}  # spike counts over 12 and 2: dyadic, exact
    model(torch.full((4, 2), 1.2))  # u0 = 1.2 spikes; u1 = 0.6 (reset) * 0 + 1.2 spikes: rate 1
    model(torch.full((4, 2), 0.1))  # never: rate 0; the two calls average to 0.5
    assert rates.take() == {"1": pytest.approx(0.5, abs=1e-12)}
    rates.remove()
    model(x)
    assert rates.take() == {}
