"""LIF traces worked by hand, with tau != 2 and threshold != 1, on the C kernel and the PyTorch path.

The dynamics (suite.models.neurons, docs/guide/models.md): leak beta = 1 - 1/tau, hard reset,

    u_t = beta u_{t-1} (1 - s_{t-1}) + x_t,    s_t = [u_t > threshold].

tau = 2 is avoided on purpose: there 1 - 1/tau = 1/tau, so a leak written as 1/tau passes.
The expected spikes and gradients below are typed from hand calculation (no value is read
from the LIF layer). Gradients use the straight-through surrogate (f' = 1), so with dL/ds_t = 1
for every t the backward recurrences of the module docstring reduce to
    detached reset:  g_t = 1 + beta (1 - s_t) g_{t+1}
    reset in graph:  g_t = 1 - beta u_t g_{t+1} + beta (1 - s_t) g_{t+1}        (g_{T-1} = 1).
Tolerance: spikes exactly; gradients 1e-6 relative (float32 rounding of fractions like 19/9).
"""

from __future__ import annotations

from fractions import Fraction as Fr

import pytest
import torch

from suite.models import LIF

# Each case: tau, threshold, and three neurons (input over T = 4 steps, spikes, dL/dx with the
# reset detached, dL/dx with the reset in the graph).
#
# tau = 3 (beta = 2/3), threshold 0.5:
#   A  x = .35 each step: u = .35, .35 + .2333 = .5833 (fires), reset -> .35, .5833 (fires).
#      With beta 1/3 (the 1/tau bug): u = .35, .4667, .5056 (fires), .35: spikes 0 0 1 0.
#      g (detached): g3 = 1, g2 = 1 + 2/3 = 5/3, g1 = 1 (fired: no leak path), g0 = 5/3.
#      g (in graph): g2 = 1 - 2/3 * .35 + 2/3 = 43/30; g1 = 1 - 2/3 * 7/12 * 43/30 = 239/540;
#                    g0 = 1 + 2/3 * (1 - .35) * 239/540 = 19307/16200.
#   B  x = .9, .2, 0, 0: fires at t=0, then the hard reset leaves u1 = .2 (no reset: .8, fires),
#      u2 = .1333, u3 = .0889. g (detached) = 1, 1 + 2/3 * 5/3 = 19/9, 5/3, 1.
#      g (in graph): g2 = 1 - 2/3 * 2/15 + 2/3 = 71/45; g1 = 1 + 2/3 (1 - .2) 71/45 = 1243/675;
#                    g0 = 1 - 2/3 * .9 * 1243/675 = -118/1125.
#   C  x = .21 each step: u = .21, .35, .4433, .5056 (fires at t=3 only; beta 1/3 never fires).
#      g (detached) = 65/27, 19/9, 5/3, 1.
#      g (in graph): g2 = 1 + 2/3 (1 - .4433) = 617/450; g1 = 1 + 2/3 * .65 * 617/450 = 21521/13500;
#                    g0 = 1 + 2/3 * .79 * 21521/13500 = 3725159/2025000.
# tau = 1.5 (beta = 1/3), threshold 0.8:
#   D  x = .5 each step: u = .5, 2/3, 13/18, 20/27, never fires (beta 2/3 fires at t=1).
#      g (detached) = 40/27, 13/9, 4/3, 1.
#      g (in graph): g2 = 1 + 1/3 (1 - 13/18) = 59/54; g1 = 1 + 1/3 * 1/3 * 59/54 = 545/486;
#                    g0 = 1 + 1/3 * 1/2 * 545/486 = 3461/2916.
#   E  x = .65 each step: u = .65, 13/15 (fires), .65, 13/15 (fires). g (detached) = 4/3, 1, 4/3, 1.
#      g (in graph): g2 = 1 + 1/3 * .35 = 67/60; g1 = 1 - 1/3 * 13/15 * 67/60 = 1829/2700;
#                    g0 = 1 + 1/3 * .35 * 1829/2700 = 174803/162000.
#   F  x = 1, .5, .3, 0: fires at t=0; u1 = .5 (no reset: .8333, fires), u2 = 7/15, u3 = 7/45.
#      g (detached) = 1, 13/9, 4/3, 1.
#      g (in graph): g2 = 1 + 1/3 (1 - 7/15) = 53/45; g1 = 1 + 1/3 * 1/2 * 53/45 = 323/270;
#                    g0 = 1 - 1/3 * 1 * 323/270 = 487/810.
CASES = {
    "tau3-threshold0.5": (3.0, 0.5, [
        ([0.35, 0.35, 0.35, 0.35], [0, 1, 0, 1], ["5/3", "1", "5/3", "1"],
         ["19307/16200", "239/540", "43/30", "1"]),
        ([0.9, 0.2, 0.0, 0.0], [1, 0, 0, 0], ["1", "19/9", "5/3", "1"],
         ["-118/1125", "1243/675", "71/45", "1"]),
        ([0.21, 0.21, 0.21, 0.21], [0, 0, 0, 1], ["65/27", "19/9", "5/3", "1"],
         ["3725159/2025000", "21521/13500", "617/450", "1"]),
    ]),
    "tau1.5-threshold0.8": (1.5, 0.8, [
        ([0.5, 0.5, 0.5, 0.5], [0, 0, 0, 0], ["40/27", "13/9", "4/3", "1"],
         ["3461/2916", "545/486", "59/54", "1"]),
        ([0.65, 0.65, 0.65, 0.65], [0, 1, 0, 1], ["4/3", "1", "4/3", "1"],
         ["174803/162000", "1829/2700", "67/60", "1"]),
        ([1.0, 0.5, 0.3, 0.0], [1, 0, 0, 0], ["1", "13/9", "4/3", "1"],
         ["487/810", "323/270", "53/45", "1"]),
    ]),
}


def _column(values) -> torch.Tensor:
    """Per-neuron series [B][T] -> the LIF layout [T*B, 1] (T-major)."""
    return torch.tensor([[float(Fr(v)) for v in series] for series in values]).T.reshape(-1, 1)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("detach_reset", [True, False], ids=["detached-reset", "reset-in-graph"])
def test_lif_spikes_and_gradients_match_hand_worked_traces(case, detach_reset, path):
    tau, threshold, neurons = CASES[case]
    x = _column([n[0] for n in neurons]).requires_grad_(True)
    lif = LIF(4, tau=tau, threshold=threshold, surrogate="ste", detach_reset=detach_reset)
    spikes = lif(x)
    spikes.backward(torch.ones_like(spikes))
    assert torch.equal(spikes.detach(), _column([n[1] for n in neurons]))
    expected_grad = _column([n[2] if detach_reset else n[3] for n in neurons])
    torch.testing.assert_close(x.grad, expected_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", sorted(CASES))
def test_lif_spikes_without_autograd_match_hand_worked_traces(case, path):
    """The no-grad forward (evaluation, attacks' predictions) is a separate code path."""
    tau, threshold, neurons = CASES[case]
    with torch.no_grad():
        spikes = LIF(4, tau=tau, threshold=threshold)(_column([n[0] for n in neurons]))
    assert torch.equal(spikes, _column([n[1] for n in neurons]))


def test_model_config_tau_and_threshold_reach_every_lif_layer(tiny_cfg):
    """tau and threshold given to a model arrive in its LIF layers: a neuron with tau = 3 and
    threshold 0.5 fed .35 each step fires at t = 1 and 3 (case A above)."""
    from suite.models import build_model

    model = build_model(tiny_cfg(tau=3.0, threshold=0.5, timesteps=4))
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    assert lifs
    for lif in lifs:
        with torch.no_grad():
            out = lif(torch.full((4, 1), 0.35))
        assert out.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
