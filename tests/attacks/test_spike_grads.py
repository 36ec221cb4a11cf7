"""The SNN gradient modes rga, hart, pdsg, assg and the attacker surrogate shapes, each against a
case worked by hand on one LIF neuron; SA-PGD step by step against a hand loop.

The neuron (float64): T = 3, tau = 4 (leak lambda = 0.75), threshold 0.8, input currents
x = (0.9, 0.5, 1.2) and a loss L = sum_t w_t s_t with w = (1, -2, 0.5), so dL/ds_t = w_t.
Forward (hard reset): u = (0.9, 0.5, 1.575), v = u - 0.8 = (0.1, -0.3, 0.775), s = (1, 0, 1).
The numbers below were worked from the rules in suite/attacks/spike_grads.py's docstring (and the
papers' reference code) with a calculator, not by the code under test.
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from suite.attacks import AttackConfig
from suite.attacks.gradients import ModeOptions, attack_model, input_gradient, reset_attack_state
from suite.attacks.sapgd import SAPGD, halving_steps
from suite.attacks.spike_grads import (ASSG, HARTLIF, RGALIF, SurrogateLIF, parse_shape, pdsg_sigma, pdsg_surrogate,
                                       rga_slope, shape_surrogate)
from suite.errors import SuiteError
from suite.models import LIF
from suite.models.twin import MeanLogits
from tests.attacks.test_attacks import inputs, tiny_model

X = (0.9, 0.5, 1.2)
W = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
# float64 hand values (16 digits) against <= ~30 float64 operations on O(1) numbers (exp, erf, tan
# within a few ulp on any libm or SIMD path): <= ~30 u 2 = 7e-15 (u = 2^-53); a wrong rule is off by > 1e-3
TOL = dict(rtol=0, atol=1e-12)


def neuron(threshold: float = 0.8) -> LIF:
    return LIF(timesteps=3, tau=4.0, threshold=threshold)


def input_grad(stand_in: nn.Module, x=X) -> torch.Tensor:
    """dL/dx_t for L = sum_t w_t s_t through `stand_in` (one sample, one neuron: x [T*B, 1])."""
    xs = torch.tensor(x, dtype=torch.float64).view(3, 1).requires_grad_(True)
    s = stand_in(xs)
    if x == X:  # the exact forward: the neuron's own spikes
        assert torch.equal(s.detach().view(3), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64))
    (g,) = torch.autograd.grad((s.view(3) * W).sum(), xs)
    return g.view(3)


# ----------------------------------------------------------------------------- rga
def test_rga_scales_each_steps_gradient_by_the_rate_models_slope_at_the_mean_current():
    """x_bar = 2.6 / 3 lies in ((1 - lambda) theta, 2 theta] = (0.2, 1.6]: slope
    (1 - 0.2 * 0.8 * 0.25) / ((0.75 + 1) * 0.8) = 0.96 / 1.4, the same factor at every step."""
    g = input_grad(RGALIF(neuron()))
    assert torch.allclose(g, W * (0.96 / 1.4), **TOL)


def test_rga_slope_below_threshold_outside_and_at_the_references_threshold_of_one():
    slope = lambda x, th=0.8: float(rga_slope(torch.tensor([x], dtype=torch.float64), 0.75, th))  # noqa: E731
    # abs=1e-15: the slopes are Python float arithmetic (IEEE, the same bits on every machine) times a 0/1
    # mask; 0.2 is the constant itself, 0.96 / 1.4 vs rga_slope's <= 9 roundings of values < 1: <= 9 u 0.69 = 7e-16
    assert slope(0.1) == pytest.approx(0.2, abs=1e-15)  # below (1 - lambda) theta = 0.2: gamma
    assert slope(-0.1) == 0.0 and slope(1.7) == 0.0  # below 0 and above 2 theta
    assert slope(1.6) == pytest.approx(0.96 / 1.4, abs=1e-15)  # the top end belongs to the steep part
    # theta = 1, the reference's hard-coded threshold: (des - gamma + gamma tau) / (tau + ext) = 0.95 / 1.75
    assert slope(0.8667, th=1.0) == pytest.approx(0.95 / 1.75, abs=1e-15)
    g = input_grad(RGALIF(neuron()), x=(0.1, 0.2, 0.0))  # x_bar = 0.1: gamma at every step
    assert torch.allclose(g, W * 0.2, **TOL)


def test_rga_slope_at_the_ends_of_its_pieces():
    """theta 0.8, lambda 0.75: (1 - lambda) theta = 0.2 exactly (0.8 / 4); 0 and 0.2 belong to the
    gamma piece, just above 0.2 is the steep piece (and with (1 - lambda) / theta = 0.3125 in
    place of (1 - lambda) theta, 0.25 would still be in the gamma piece)."""
    slope = lambda x: float(rga_slope(torch.tensor([x], dtype=torch.float64), 0.75, 0.8))  # noqa: E731
    # abs=1e-15: as in the test above, <= 7e-16 on any machine
    assert slope(0.0) == pytest.approx(0.2, abs=1e-15)
    assert slope(0.8 / 4) == pytest.approx(0.2, abs=1e-15)
    assert slope(0.25) == pytest.approx(0.96 / 1.4, abs=1e-15)


# A second sample, (0.1, 0.2, 0.0) with w = (0.5, 1, -1): u = (0.1, 0.275, 0.20625), never fires,
# v = (-0.7, -0.525, -0.59375), x_bar = 0.1 (rga's gamma piece).
X2 = (0.1, 0.2, 0.0)
W2 = torch.tensor([0.5, 1.0, -1.0], dtype=torch.float64)


def two_sample_grad(stand_in: nn.Module) -> torch.Tensor:
    """dL/dx [T, 2] for samples X and X2 (rows T-major: t0b0, t0b1, t1b0, ...)."""
    xs = torch.tensor([X, X2], dtype=torch.float64).T.reshape(6, 1).requires_grad_(True)
    s = stand_in(xs).view(3, 2)
    (g,) = torch.autograd.grad((s * torch.stack([W, W2], dim=1)).sum(), xs)
    return g.view(3, 2)


def test_rga_and_hart_average_each_sample_over_its_own_time_steps():
    """rga: W (0.96 / 1.4) for sample 0, W2 * 0.2 for sample 1; hart (gamma 1): sample 0 as in the
    one-sample case, sample 1 (0.5 * 0.3 + 1 * 0.475 - 1 * 0.40625) / 3 at every step."""
    rga = two_sample_grad(RGALIF(neuron()))
    assert torch.allclose(rga, torch.stack([W * (0.96 / 1.4), W2 * 0.2], dim=1), **TOL)
    hart = two_sample_grad(HARTLIF(neuron(), 1.0))
    expected = torch.tensor([(0.9 - 1.4 + 0.1125) / 3, 0.21875 / 3], dtype=torch.float64).expand(3, 2)
    assert torch.allclose(hart, expected, **TOL)


# ----------------------------------------------------------------------------- hart
@pytest.mark.parametrize("gamma, expected", [
    (1.0, (1 * 0.9 - 2 * 0.7 + 0.5 * 0.225) / 3),  # g = 1 - |v|: 0.9, 0.7, 0.225
    (2.0, (1 * 1.9 / 4 - 2 * 1.7 / 4 + 0.5 * 1.225 / 4) / 3),  # g = (2 - |v|) / 4
    (0.5, (1 * 0.4 / 0.25 - 2 * 0.2 / 0.25 + 0.5 * 0.0) / 3),  # v_2 = 0.775 is outside the triangle
])
def test_hart_copies_the_time_averaged_gradient_to_every_step(gamma, expected):
    g = input_grad(HARTLIF(neuron(), gamma))
    assert torch.allclose(g, torch.full((3,), expected, dtype=torch.float64), **TOL)


# ----------------------------------------------------------------------------- pdsg
def test_pdsg_width_is_the_running_std_of_the_membrane():
    """sigma_0: one value, its std undefined -> 1; sigma_1 = |0.1 + 0.3| / sqrt 2; sigma_2 =
    sqrt(0.5904166667 / 2) (deviations from the mean 0.191666...)."""
    v = torch.tensor([0.1, -0.3, 0.775], dtype=torch.float64).view(3, 1, 1)
    sigma = pdsg_sigma(v).view(3)
    assert torch.allclose(sigma, torch.tensor([1.0, 0.4 / math.sqrt(2), math.sqrt(0.5904166666666667 / 2)],
                                              dtype=torch.float64), rtol=0, atol=1e-12)


def test_pdsg_backpropagates_through_time_with_its_gaussian():
    """f'(v_t) = N(v_t; sigma_t / 2, sigma_t) = (0.368270140, 0.417319027, 0.478070023); BPTT with
    the detached reset: g_2 = 0.5 f'_2, g_1 = -2 f'_1 + 0.75 g_2 (s_1 = 0), g_0 = f'_0 (s_0 = 1)."""
    g = input_grad(SurrogateLIF(neuron(), pdsg_surrogate))
    expected = torch.tensor([0.36827014030332333, -0.655361795181626, 0.2390350117453342], dtype=torch.float64)
    assert torch.allclose(g, expected, rtol=0, atol=1e-12)


def test_pdsg_width_is_per_channel_over_batch_and_positions():
    """Channel 0 holds 0 and 2 (std sqrt 2), channel 1 a constant (std 0 -> 1), at t = 0."""
    v = torch.tensor([[[[0.0]], [[5.0]]], [[[2.0]], [[5.0]]]], dtype=torch.float64).unsqueeze(0)  # [1, 2, 2, 1, 1]
    sigma = pdsg_sigma(v)
    assert sigma.shape == (1, 1, 2, 1, 1)
    assert torch.allclose(sigma.flatten(), torch.tensor([math.sqrt(2.0), 1.0], dtype=torch.float64), **TOL)


def test_pdsg_width_of_one_sample_at_one_position_is_one_without_a_warning():
    """B = 1 and no positions (a LIF after a linear layer): step 0 holds one value per channel,
    whose unbiased std is undefined; sigma_0 = 1 is set, not computed (torch would warn of
    zero degrees of freedom), and sigma keeps v's dtype. sigma_1[c] = |v_0c - v_1c| / sqrt 2."""
    v = torch.tensor([[[0.5, -1.0]], [[0.25, 1.0]]], dtype=torch.float64)  # [T=2, B=1, C=2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sigma = pdsg_sigma(v)
        half = pdsg_sigma(v.half())
    assert sigma.shape == (2, 1, 2)
    assert torch.allclose(sigma.flatten(), torch.tensor([1.0, 1.0, 0.25 / math.sqrt(2), 2 / math.sqrt(2)],
                                                        dtype=torch.float64), rtol=0, atol=1e-12)
    assert half.dtype == torch.float16


# ----------------------------------------------------------------------------- assg
def test_assg_sharpens_from_running_statistics_over_iterations_and_restarts_when_reset():
    """a = 2 tan(0.425 pi) / pi = 2.65171219; iteration 1: M = 0.9 + 0.1 |v|, D = 0.1 | |v| - M |,
    alpha = a / (M + 1.5 D + 1e-4); iteration 2 updates M and D again from the same v."""
    surrogate = ASSG()
    stand_in = SurrogateLIF(neuron(), surrogate)
    first = torch.tensor([1.105080237433995, -0.9966440318187848, 0.05842729591342704], dtype=torch.float64)
    second = torch.tensor([1.0926943669521836, -0.99891922785081, 0.05862012157245783], dtype=torch.float64)
    assert surrogate.a == pytest.approx(2.6517121914776998, abs=1e-12)
    assert torch.allclose(input_grad(stand_in), first, rtol=0, atol=1e-12)
    assert torch.allclose(input_grad(stand_in), second, rtol=0, atol=1e-12)
    reset_attack_state(nn.Sequential(stand_in))
    assert torch.allclose(input_grad(stand_in), first, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- attacker shapes
@pytest.mark.parametrize("name, f", [
    ("pcw:0.5", (0.4 / 0.25, 0.2 / 0.25, 0.0)),  # max(0, 0.5 - |v|) / 0.25
    ("exp:1", (math.exp(-0.1), math.exp(-0.3), math.exp(-0.775))),
    ("rect:1", (1.0, 1.0, 0.0)),  # 1[|v| < 0.5] / 1
])
def test_attacker_shapes_backpropagate_through_time(name, f):
    g2 = 0.5 * f[2]
    g1 = -2 * f[1] + 0.75 * g2
    g0 = 1 * f[0]  # s_0 = 1: the reset cuts the path to later steps
    g = input_grad(SurrogateLIF(neuron(), shape_surrogate(name)))
    assert torch.allclose(g, torch.tensor([g0, g1, g2], dtype=torch.float64), rtol=0, atol=1e-12)


def test_attacker_shapes_at_their_edges():
    """f at v = (0.25, -0.25, 0.2, -0.1, 1.5): rect:0.5 is 1/0.5 strictly inside |v| < 0.25;
    pcw:2 is (2 - |v|) / 4 (a width where / w^2 and / w * 2 differ)."""
    v = torch.tensor([0.25, -0.25, 0.2, -0.1, 1.5], dtype=torch.float64)
    G = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)

    def f(name):
        out = torch.empty_like(v)
        shape_surrogate(name)(v, G, out, torch.empty_like(v))
        return out

    assert torch.allclose(f("rect:0.5"), torch.tensor([0.0, 0.0, 6.0, 8.0, 0.0], dtype=torch.float64), **TOL)
    assert torch.allclose(f("pcw:2"), G * torch.tensor([1.75, 1.75, 1.8, 1.9, 0.5], dtype=torch.float64) / 4, **TOL)
    # rect:0.3 in float64: 1 / 0.3 is no float32 number, so a float32 step shows at 1e-12
    assert torch.allclose(f("rect:0.3"), G * torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64) / 0.3,
                          rtol=0, atol=1e-12)


def test_attacker_surrogates_need_a_detached_reset():
    with pytest.raises(SuiteError) as err:
        SurrogateLIF(LIF(timesteps=3, tau=4.0, detach_reset=False), pdsg_surrogate)
    assert str(err.value) == "the attacker's surrogates need LIF layers with a detached reset"


@pytest.mark.parametrize("name", ["pcw:0", "exp:-1", "rect:x", "pcw:nan", "pcw:inf"])
def test_a_shape_needs_a_positive_width(name):
    with pytest.raises(SuiteError, match=rf"^surrogate '{name}': the width after ':' must be a number > 0$"):
        parse_shape(name)


# ----------------------------------------------------------------------------- wiring and refusals
@pytest.mark.parametrize("grad, kind", [("rga", RGALIF), ("hart", HARTLIF), ("pdsg", SurrogateLIF),
                                        ("assg", SurrogateLIF)])
def test_each_mode_replaces_every_lif_in_the_attackers_copy_only(grad, kind):
    model = tiny_model("snn")
    lifs = sum(isinstance(m, LIF) for m in model.modules())
    attacker = attack_model(model, grad)
    assert sum(isinstance(m, kind) for m in attacker.modules()) == lifs > 0
    assert sum(isinstance(m, kind) for m in model.modules()) == 0  # the evaluated model is untouched


def _swap_lifs(model: nn.Module, make) -> nn.Module:
    """A frozen copy of `model` with every LIF replaced by make(lif), written out here."""
    twin = copy.deepcopy(model).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LIF):
                setattr(parent, name, make(child))
    return MeanLogits(twin)


@pytest.mark.parametrize("grad, surrogate, source_kind", [("bptt", "pcw:0.5", None), ("transfer", "exp:2", "snn")])
def test_an_attacker_shape_differentiates_every_lif_with_that_shape(grad, surrogate, source_kind):
    """bptt (and transfer from an SNN) with an attacker shape: the gradient is that of the model
    whose LIFs are SurrogateLIF(lif, shape), not that of the training surrogate."""
    target = tiny_model("snn")
    crafted_on = tiny_model("snn", seed=1) if source_kind else target
    attacker = attack_model(target, grad, surrogate, source=crafted_on if source_kind else None)
    by_hand = _swap_lifs(crafted_on, lambda lif: SurrogateLIF(lif, shape_surrogate(surrogate)))
    x, y = inputs(4)
    assert torch.allclose(input_gradient(attacker, x, y), input_gradient(by_hand, x, y), rtol=0, atol=1e-7)
    assert not torch.allclose(input_gradient(attacker, x, y), input_gradient(attack_model(crafted_on), x, y))


def test_mode_options_reach_every_stand_in():
    model = tiny_model("snn")
    hart = attack_model(model, "hart", options=ModeOptions(hart_gamma=0.3))
    assert {m.gamma for m in hart.modules() if isinstance(m, HARTLIF)} == {0.3}
    assg = attack_model(model, "assg", options=ModeOptions(assg_sharpness=0.3))
    a = {m.grad.a for m in assg.modules() if isinstance(m, SurrogateLIF)}
    # the library's own expression on the same libm: equal to the bit (1e-15 = 9 ulp at 0.88)
    assert len(a) == 1 and a.pop() == pytest.approx(2 * math.tan(0.3 * math.pi) / math.pi, abs=1e-15)


@pytest.mark.parametrize("grad", ["rga", "hart", "pdsg", "assg"])
def test_a_spiking_mode_on_an_ann_is_refused(grad):
    with pytest.raises(SuiteError, match=rf"^gradient mode {grad} is a rule for spiking neurons; the model is an ANN"):
        attack_model(tiny_model("ann"), grad)


@pytest.mark.parametrize("changes, message", [
    (dict(grad="rga", attack_surrogates=("atan",)), "--attack-surrogate applies to bptt (and transfer from an SNN); "
                                                    "rga uses its own rule, not a surrogate"),
    (dict(hart_gamma=0.0), "--hart-gamma must be a finite number in (0, 100], got 0"),
    (dict(assg_sharpness=0.5), "--assg-sharpness must be a finite number in (0, 0.49], got 0.5"),
    (dict(budget="huge"), "unknown --budget 'huge'; choose one of: quick, standard"),
    (dict(attack_surrogates=("pcw",)), "unknown surrogate 'pcw'; choose one of: "),
])
def test_bad_mode_settings_are_one_message(changes, message):
    with pytest.raises(SuiteError) as err:
        AttackConfig(**changes)
    assert str(err.value).startswith(message)


# ----------------------------------------------------------------------------- SA-PGD
def test_sapgd_halves_its_step_on_apgds_checkpoints():
    """k = 22, then 22 - 3 per checkpoint down to 6 (N = 100): halvings after iterations
    21, 40, 56, 69, 79, 86, 92, 98 (0-based); N = 10: k = 2, then every iteration (k_min = 1)."""
    assert halving_steps(100) == [21, 40, 56, 69, 79, 86, 92, 98]
    assert halving_steps(10) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert halving_steps(4) == [0, 1, 2, 3]  # k = max(floor(0.88), 1) = 1: after every iteration


def _hand_sapgd(model, x, y, eps, iterations, start):
    """SA-PGD by its rule, written out with plain tensor operations (module docstring of
    suite.attacks.sapgd): returns the example per sample."""
    x_adv = (x + eps * start / start.abs().flatten(1).max(dim=1).values.view(-1, 1)).clamp(x - eps, x + eps).clamp(0, 1)

    def loss_grad(z):
        z = z.clone().requires_grad_(True)
        out = model(z)
        losses = nn.functional.cross_entropy(out, y, reduction="none")
        return losses.detach(), torch.autograd.grad(losses.sum(), z)[0], out.argmax(1).detach()

    loss, g, pred = loss_grad(x_adv)
    best, best_loss, found, fooled = x_adv.clone(), loss.clone(), x_adv.clone(), pred != y
    eta, k, counter, m, v = eps, max(int(0.22 * iterations), 1), 0, None, None
    for i in range(iterations):
        gh = g / g.abs().mean(dim=1, keepdim=True)
        q = g * g / (g * g).mean(dim=1, keepdim=True)
        m = gh if m is None else 0.5 * m + gh
        v = q if v is None else 0.8 * v + q
        x_adv = torch.minimum(torch.maximum(x_adv + (eta * m / (v.sqrt() + 1e-12)).clamp(-eta, eta), x - eps),
                              x + eps).clamp(0, 1)
        loss, g, pred = loss_grad(x_adv)
        for n in range(len(y)):
            if pred[n] != y[n]:
                found[n], fooled[n] = x_adv[n], True
            if loss[n] > best_loss[n]:
                best[n], best_loss[n] = x_adv[n], loss[n]
        counter += 1
        if counter == k:
            eta, counter = eta / 2, 0
            k = max(k - max(int(0.03 * iterations), 1), max(int(0.06 * iterations), 1))
    return torch.stack([found[n] if fooled[n] else best[n] for n in range(len(y))]), fooled, x_adv


class Sine(nn.Module):
    def forward(self, x):
        return torch.sin(x)


@pytest.mark.parametrize("seed, eps, iterations, case", [(2, 0.1, 30, "misclassified, then not"),
                                                         (18, 0.1, 10, "best before last")])
def test_sapgd_on_an_ann_follows_the_hand_loop_step_by_step(seed, eps, iterations, case):
    """24 samples through a sine layer with steep weights (a bumpy loss; seeds found by search)
    so that the cases the returned point depends on occur, each checked: samples never
    misclassified, and either one misclassified at some iterate but not at the last (its last
    misclassified iterate comes back, not the final one) or one never misclassified whose
    highest-loss iterate is not the last (by more than 1e-4: not a rounding difference)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), Sine(), nn.Linear(16, 5)).double()
    with torch.no_grad():
        model[0].weight.mul_(8)
    x = torch.rand(24, 6, dtype=torch.float64)
    y = torch.arange(24) % 5
    torch.manual_seed(7)
    start = 2 * torch.rand_like(x) - 1  # what SAPGD draws first from the same seed
    expected, fooled, final = _hand_sapgd(model, x, y, eps, iterations, start)
    with torch.no_grad():
        final_right = model(final).argmax(1) == y
    assert (~fooled).any()
    if case == "misclassified, then not":
        assert (fooled & final_right).any()
    else:
        assert ((expected - final).abs().flatten(1).amax(dim=1)[~fooled] > 1e-4).any()
    torch.manual_seed(7)
    got = SAPGD(model, eps, iterations)(x, y)
    # the hand loop runs SAPGD's float64 operations in the same order on the same model, so the iterates
    # agree to the bit (a different order could flip a best-loss comparison: no tolerance would absorb it)
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)
    # the projection rounds x + eps once: |got - x| <= eps + u (x + eps) < eps + 2.5e-16
    assert (got - x).abs().max() <= eps + 1e-12 and got.min() >= 0 and got.max() <= 1


class _FloorSTE(torch.autograd.Function):
    """floor forward, the identity's gradient backward: a loss flat between integers whose
    gradient is not zero."""

    @staticmethod
    def forward(ctx, x):
        return x.floor()

    @staticmethod
    def backward(ctx, G):
        return G


class Staircase(nn.Module):
    """Two logits: 10, and floor(sum of the inputs); label 0 is never lost within the ball."""

    def forward(self, x):
        return torch.stack([torch.full_like(x[:, 0], 10.0), _FloorSTE.apply(x.sum(1))], dim=1)


def test_sapgd_keeps_the_first_iterate_of_equal_losses():
    """Sums 2.5 and 1.4 +- 4 eps stay within one integer, so every iterate has the loss of the
    start: the best point is the start (the first of equal losses, as torchattacks' APGD
    `loss > loss_best`), although the iterates move; checked against the hand loop."""
    model = Staircase()
    x = torch.tensor([[0.6, 0.6, 0.65, 0.65], [0.2, 0.3, 0.4, 0.5]], dtype=torch.float64)
    y = torch.zeros(2, dtype=torch.long)
    eps = 8 / 255
    torch.manual_seed(3)
    start = 2 * torch.rand_like(x) - 1
    expected, fooled, final = _hand_sapgd(model, x, y, eps, 10, start)
    first = (x + eps * start / start.abs().max(dim=1, keepdim=True).values).clamp(x - eps, x + eps).clamp(0, 1)
    assert not fooled.any() and torch.equal(expected, first)
    assert (final - first).abs().amax(dim=1).min() > 1e-3  # the iterates did move
    torch.manual_seed(3)
    assert torch.allclose(SAPGD(model, eps, 10)(x, y), expected, rtol=0, atol=1e-12)  # same operations: to the bit


def test_attacker_surrogates_take_the_fused_kernel_or_torch_path_alike(path):
    """float32 on the CPU: the recurrence after f'(v) G runs in the C kernel (path "kernel") or
    in PyTorch ops (path "torch"); both give the float64 hand values to float32 precision."""
    expected = torch.tensor([0.36827014030332333, -0.655361795181626, 0.2390350117453342])
    xs = torch.tensor(X, dtype=torch.float32).view(3, 1).expand(3, 4096).contiguous().requires_grad_(True)
    s = SurrogateLIF(neuron(), pdsg_surrogate)(xs)  # 4096 identical neurons: enough for the kernel's threads
    (g,) = torch.autograd.grad((s * W.float().view(3, 1)).sum(), xs)
    assert torch.allclose(g[:, 0], expected, rtol=0, atol=1e-6) and torch.equal(g[:, :1].expand_as(g), g)
