"""The model an attacker differentiates: SNN gradient modes bptt, bptr and transfer.

torchattacks always receives `attack_model(...)`: a `MeanLogits` wrapper around a private
copy of the differentiated model, in eval mode, parameters frozen. The evaluated model is
never modified (no surrogate swap, no layer replacement, no requires_grad change on it).

Modes (SNN targets; an ANN target has one exact gradient, so bptt and bptr coincide):

    bptt      backpropagation through all T time steps, each spike's Heaviside replaced by a
              surrogate derivative: the training surrogate, or `attack_surrogate` if given.
    bptr      backpropagation through the spike rate (BPTR, Ding et al. 2022, "SNN-RAT:
              Robustness-enhanced SNN through regularized adversarial training"). Forward is
              the exact SNN; backward treats every LIF layer's output as its rate
              r = mean_t s_t, modelled as an integrate-and-fire rate r ~ x_bar / threshold
              where the neuron fires (r > 0) and 0 where it stays silent, x_bar = mean_t x_t
              its mean input. So for every step t:  dL/dx_t = 1[r > 0] / (threshold * T)
              * sum_t' dL/ds_t'.  Implemented as  s + (z - z.detach()),  z = 1[r > 0] *
              x_bar / threshold: the value is exactly s, the gradient is that of z. Leak and
              reset are ignored in backward, as in the paper's rate approximation.
    transfer  examples crafted on a `source` model (usually the ANN twin; an SNN source is
              differentiated with bptt) and evaluated on the target, whose forward is never
              backpropagated.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from suite.errors import SuiteError
from suite.models import LIF, MeanLogits, get_surrogate, mean_logits, set_surrogate

GRAD_MODES = ("bptt", "bptr", "transfer")


class RateLIF(nn.Module):
    """BPTR stand-in for a LIF layer: exact spikes forward, rate gradient backward (see module doc)."""

    def __init__(self, lif: LIF):
        super().__init__()
        self.lif = lif

    def forward(self, x: Tensor) -> Tensor:  # x: [T*B, ...], T-major
        T = self.lif.timesteps
        with torch.no_grad():
            s = self.lif(x)  # exact spikes [T*B, ...], no per-step graph
        xs = x.reshape(T, -1, *x.shape[1:])  # [T, B, ...]
        fires = (s.reshape(xs.shape).mean(0) > 0).to(x.dtype)  # 1[r > 0], [B, ...]
        z = fires * xs.mean(0) / self.lif.threshold  # rate estimate where it is linear, [B, ...]
        dz = (z - z.detach()).unsqueeze(0).expand(xs.shape).reshape(x.shape)  # zero, with z's gradient
        return s + dz


def _replace_lifs(model: nn.Module) -> int:
    """Swap every LIF child for a RateLIF around it, in place; returns how many."""
    targets = [(parent, name, child) for parent in model.modules()
               for name, child in parent.named_children() if isinstance(child, LIF)]
    for parent, name, child in targets:
        setattr(parent, name, RateLIF(child))
    return len(targets)


def is_snn(model: nn.Module) -> bool:
    return getattr(model, "kind", None) == "snn"


def _frozen_copy(model: nn.Module) -> nn.Module:
    """A private eval-mode copy whose parameters need no gradient (only the input's is wanted)."""
    twin = copy.deepcopy(model).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


def check_grad_mode(grad: str, attack_surrogate: str | None, has_source: bool | None = None) -> None:
    """The one home of the gradient-mode rules: a known mode; an attacker surrogate only where a
    surrogate is differentiated (not bptr); a source model exactly when the mode is transfer.
    `has_source` None: not known yet (a config without models), not checked."""
    if grad not in GRAD_MODES:
        raise SuiteError(f"unknown gradient mode {grad!r}; choose one of: {', '.join(GRAD_MODES)}")
    if attack_surrogate is not None:
        get_surrogate(attack_surrogate)
        if grad == "bptr":
            raise SuiteError("--attack-surrogate applies to bptt (and transfer from an SNN); "
                             "bptr uses the rate gradient, not a surrogate")
    if has_source is None:
        return
    if grad == "transfer" and not has_source:
        raise SuiteError("gradient mode transfer needs a source model (--source) to craft the examples on")
    if has_source and grad != "transfer":
        raise SuiteError(f"a source model (--source) only applies to gradient mode transfer, not {grad}")


def attack_model(model: nn.Module, grad: str = "bptt", attack_surrogate: str | None = None,
                 source: nn.Module | None = None) -> MeanLogits:
    """The module torchattacks differentiates: [B, ...] in [0, 1] -> time-averaged logits [B, classes]."""
    check_grad_mode(grad, attack_surrogate, has_source=source is not None)
    if grad == "transfer":
        _check_compatible(model, source)
        crafted_on = source
    else:
        crafted_on = model
    twin = _frozen_copy(crafted_on)
    if is_snn(twin):
        if grad == "bptr":
            if _replace_lifs(twin) == 0:
                raise SuiteError("bptr needs LIF layers, and this SNN has none")
        elif attack_surrogate is not None:
            set_surrogate(twin, attack_surrogate)
    return MeanLogits(twin)


def describe_gradient(model: nn.Module, grad: str, attack_surrogate: str | None = None,
                      source: nn.Module | None = None) -> dict[str, str]:
    """What the attacker differentiated, in words: {"grad": ..., "surrogate": ...} for summaries."""
    crafted_on = source if grad == "transfer" else model
    if not is_snn(crafted_on):
        how, surrogate = "exact", "-"
    elif grad == "bptr":
        how, surrogate = "bptr", "rate (IF)"
    else:
        how = "bptt"
        surrogate = attack_surrogate or getattr(getattr(crafted_on, "cfg", None), "surrogate", "?")
    if grad == "transfer":
        how = f"transfer from {getattr(crafted_on, 'kind', '?')} ({how})"
    elif how == "exact":
        how = "exact (ann)"
    return {"grad": how, "surrogate": surrogate}


def _check_compatible(target: nn.Module, source: nn.Module) -> None:
    """A transfer source must take the target's inputs and predict the same classes."""
    a, b = getattr(target, "cfg", None), getattr(source, "cfg", None)
    if a is None or b is None:
        return
    diffs = [f"{k} {getattr(b, k)} vs {getattr(a, k)}" for k in ("in_channels", "input_size", "num_classes")
             if getattr(a, k) != getattr(b, k)]
    if diffs:
        raise SuiteError(f"source model does not fit the target: {', '.join(diffs)} (source vs target)")


def input_gradient(attacker: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """d CE(attacker(x), y) / dx: the gradient FGSM and PGD take the sign of (mean-reduced CE)."""
    x = x.detach().clone().requires_grad_(True)
    out = attacker(x)
    logits = out if isinstance(attacker, MeanLogits) else mean_logits(out, attacker)
    return torch.autograd.grad(F.cross_entropy(logits, y), x)[0]
