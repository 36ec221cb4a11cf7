"""PGD step by step against a hand loop written from the rule (docs/guide/attacks.md, suite.attacks.run):

    x_0 = x  (or x + uniform(-eps, eps), clamped to [0, 1], with a random start)
    x_{k+1} = clamp(x + clamp(x_k + alpha * sign(g_k) - x, -eps, eps), 0, 1),
    g_k = d CE(mean-over-time logits(x_k), y) / d x_k   (CE averaged over the batch).

The budget is chosen so that no step is clipped by the eps ball (steps * alpha < eps): every
step moves the iterate, so a wrong step size or a wrong number of steps changes the result.
The hand loop runs the same float operations in the same order, so iterates agree exactly.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from suite.attacks import AttackConfig, Budget, attack_model, craft, run_attacks
from suite.attacks.run import batch_seed
from suite.models import ModelConfig, ModelSpec, build_model, mean_logits

EPS, ALPHA, STEPS = 8 / 255, 1 / 255, 4  # 4 steps of 1/255 stay inside the 8/255 ball


def tiny(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(spec=ModelSpec(arch="resnet20", kind=kind, width=0.25, timesteps=2, threshold=0.25),
                      in_channels=1, input_size=8)
    return build_model(cfg).eval()


def batch(n: int = 6):
    g = torch.Generator().manual_seed(1)
    # away from 0 and 1, so that the [0, 1] clamp does not hide a step either
    return 0.1 + 0.8 * torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % 10


def hand_pgd(model, x, y, eps, alpha, steps, start=None):
    """The iterates x_1 .. x_steps of the rule above (model differentiated as it is)."""
    xk = x.clone() if start is None else start.clone()
    iterates = []
    for _ in range(steps):
        leaf = xk.clone().requires_grad_(True)
        loss = F.cross_entropy(mean_logits(model(leaf), model), y)
        (g,) = torch.autograd.grad(loss, leaf)
        xk = xk + alpha * g.sign()
        xk = torch.clamp(x + torch.clamp(xk - x, min=-eps, max=eps), min=0, max=1)
        iterates.append(xk)
    return iterates


@pytest.mark.parametrize("kind", ["ann", "snn"])
def test_pgd_follows_the_hand_loop_step_by_step(kind):
    model = tiny(kind)
    x, y = batch()
    expected = hand_pgd(model, x, y, EPS, ALPHA, STEPS)
    for k in range(1, STEPS + 1):
        cfg = AttackConfig(methods=("pgd",), eps=(EPS,), alpha=ALPHA, steps=k, random_start=False)
        adv = craft(attack_model(model), "pgd", x, y, EPS, Budget.of(cfg), seed=0)
        assert torch.equal(adv, expected[k - 1]), f"PGD iterate {k} differs from the hand loop"
    # each step moved some pixel by exactly alpha (no step was lost to clipping)
    moved = [(b - a).abs().amax().item() for a, b in zip([x] + expected[:-1], expected)]
    assert moved == pytest.approx([ALPHA] * STEPS, rel=1e-5)


@pytest.mark.parametrize("kind", ["ann", "snn"])
def test_attack_runner_pgd_equals_the_hand_loop(kind):
    """Through run_attacks (config -> torchattacks): step size and step count reach the attack."""
    model = tiny(kind)
    x, y = batch()
    cfg = AttackConfig(methods=("pgd",), eps=(EPS,), alpha=ALPHA, steps=STEPS, random_start=False,
                       batch_size=4, samples=None)  # every sample: two batches, 4 + 2
    store = run_attacks(model, TensorDataset(x, y), cfg)
    (entry,) = store.entries
    expected = torch.cat([hand_pgd(model, x[s:s + 4], y[s:s + 4], EPS, ALPHA, STEPS)[-1] for s in (0, 4)])
    assert torch.equal(entry.adv, expected)
    torch.testing.assert_close(entry.linf, (expected - x).abs().flatten(1).amax(1), rtol=0, atol=0)
    assert entry.linf.max().item() == pytest.approx(STEPS * ALPHA, rel=1e-5)  # 4 steps of 1/255, unclipped


def test_random_start_is_the_seeded_uniform_draw_then_the_same_steps():
    """With a random start, PGD starts at x + uniform(-eps, eps) drawn from the seed the runner
    derives for the batch, clamped to [0, 1], then takes the same steps as above."""
    model = tiny("ann")
    x, y = batch(4)
    cfg = AttackConfig(methods=("pgd",), eps=(EPS,), alpha=ALPHA, steps=STEPS, random_start=True,
                       batch_size=4, seed=5, samples=None)
    (entry,) = run_attacks(model, TensorDataset(x, y), cfg).entries
    gen_state = torch.get_rng_state()
    torch.manual_seed(batch_seed(5, "pgd", EPS, 0))
    start = torch.clamp(x + torch.empty_like(x).uniform_(-EPS, EPS), min=0, max=1)
    torch.set_rng_state(gen_state)
    expected = hand_pgd(model, x, y, EPS, ALPHA, STEPS, start=start)[-1]
    assert torch.equal(entry.adv, expected)
    assert not torch.equal(entry.adv, hand_pgd(model, x, y, EPS, ALPHA, STEPS)[-1])  # the start mattered
