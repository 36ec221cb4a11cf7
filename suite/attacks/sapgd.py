"""SA-PGD, the stable adaptive PGD of Wang, Zhao, Chen, Zhang and Zeng, "Towards Reliable Evaluation
of Adversarial Robustness for Spiking Neural Networks" (arXiv 2512.22522), written from the rule
of its code (craree/Towards-Reliable-Evaluation-of-Adversarial-Robustness-for-Spiking-Neural-
Networks, attack.py `SAPGD.attack_single_run`): APGD's skeleton (Croce and Hein 2020) with a
normalised Adam-like direction in place of the sign, a clipped step and a step size halved on a
fixed schedule.

For each sample (means over all its input coordinates), with g_i the gradient of the summed
cross-entropy at the iterate x_i:

    m_i = 0.5 m_{i-1} + g_i / mean|g_i|          (m_0 = g_0 / mean|g_0|)
    v_i = 0.8 v_{i-1} + g_i^2 / mean(g_i^2)      (v_0 = g_0^2 / mean(g_0^2))
    x_{i+1} = P( x_i + clip(eta m_i / (sqrt(v_i) + 1e-12), -eta, eta) )

P projects onto the eps ball around the clean x and [0, 1]. The start x_0 = P(x + eps t / max|t|),
t uniform in [-1, 1] per coordinate (APGD's). eta starts at eps and is halved, whatever the loss
did, after k iterations, then after k - d, k - 2d, ... (never fewer than k_min), with k =
max(floor(0.22 N), 1), d = max(floor(0.03 N), 1), k_min = max(floor(0.06 N), 1) for N iterations
(APGD's checkpoints; SA-PGD does not return to the best point at them). The constants 0.5 and
0.8 and the schedule are the reference's.

What comes back per sample: the last iterate that the attacked model misclassified (as the
reference's `x_best_adv`); for a sample never misclassified, the iterate of the highest loss
seen (the best point; of equal losses the first, as torchattacks' APGD moves it only on a
strictly higher loss; the reference returns the clean input there, which says nothing about
how far the attack got; robust accuracy is the same either way). A sample whose gradient is
zero everywhere takes no step (the reference would divide 0 by 0).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

MOMENTUM = 0.5  # reference: m = 0.5 m + g / mean|g|
SECOND_MOMENT = 0.8  # reference: v = 0.8 v + g^2 / mean(g^2)
STEP_EPS = 1e-12  # reference: m / (sqrt(v) + 1e-12)
FIRST_CHECKPOINT, CHECKPOINT_DECREASE, MIN_CHECKPOINT = 0.22, 0.03, 0.06  # APGD's, as fractions of N


def halving_steps(iterations: int) -> list[int]:
    """The iterations (0-based) after which eta halves (module docstring)."""
    k = max(int(FIRST_CHECKPOINT * iterations), 1)
    decrease = max(int(CHECKPOINT_DECREASE * iterations), 1)
    least = max(int(MIN_CHECKPOINT * iterations), 1)
    out, counter = [], 0
    for i in range(iterations):
        counter += 1
        if counter == k:
            out.append(i)
            counter = 0
            k = max(k - decrease, least)
    return out


def _per_sample_mean(t: Tensor) -> Tensor:
    """The mean over each sample's coordinates, [B, 1, ...]; where it is 0 (a gradient that is
    zero everywhere: that sample takes no step) the smallest positive float, not 0/0."""
    mean = t.flatten(1).mean(dim=1).clamp_min(torch.finfo(t.dtype).tiny)
    return mean.view(-1, *([1] * (t.dim() - 1)))


class SAPGD:
    """SA-PGD on `model` ([B, ...] in [0, 1] -> logits [B, classes]) at L-inf budget `eps` with
    `iterations` steps; `attack(x, y)` returns the examples (module docstring). Random draws come
    from torch's global generator (the caller seeds it)."""

    def __init__(self, model: nn.Module, eps: float, iterations: int):
        self.model, self.eps, self.iterations = model, eps, iterations

    def _loss_and_grad(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample CE [B], its gradient (of the sum) and the logits, in one forward pass."""
        x = x.detach().requires_grad_(True)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), x)
        return loss.detach(), grad.detach(), logits.detach()

    def _project(self, x_new: Tensor, x: Tensor) -> Tensor:
        return torch.min(torch.max(x_new, x - self.eps), x + self.eps).clamp(0.0, 1.0)

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        x = x.detach()
        t = 2 * torch.rand_like(x) - 1
        x_adv = self._project(x + self.eps * t / t.abs().flatten(1).amax(dim=1).view(-1, *([1] * (x.dim() - 1))), x)
        loss, grad, logits = self._loss_and_grad(x_adv, y)
        best_loss, best = loss.clone(), x_adv.clone()
        fooled = logits.argmax(dim=1) != y
        found = x_adv.clone()  # per sample: the last misclassified iterate (where fooled)
        eta, halve = self.eps, set(halving_steps(self.iterations))
        m = v = None
        for i in range(self.iterations):
            g_hat = grad / _per_sample_mean(grad.abs())
            q = grad ** 2 / _per_sample_mean(grad ** 2)
            m = g_hat if m is None else MOMENTUM * m + g_hat
            v = q if v is None else SECOND_MOMENT * v + q
            step = (eta * m / (v.sqrt() + STEP_EPS)).clamp(-eta, eta)
            x_adv = self._project(x_adv + step, x)
            loss, grad, logits = self._loss_and_grad(x_adv, y)
            wrong = logits.argmax(dim=1) != y
            found[wrong] = x_adv[wrong]
            fooled |= wrong
            better = loss > best_loss
            best[better], best_loss[better] = x_adv[better], loss[better]
            if i in halve:
                eta /= 2
        return torch.where(fooled.view(-1, *([1] * (x.dim() - 1))), found, best)
