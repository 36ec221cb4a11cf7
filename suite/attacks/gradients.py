"""The model an attacker differentiates: the SNN gradient modes.

torchattacks always receives `attack_model(...)`: a `MeanLogits` wrapper around a private
copy of the differentiated model, in eval mode, parameters frozen. The evaluated model is
never modified (no surrogate swap, no layer replacement, no requires_grad change on it).

Modes (SNN targets; an ANN target has one exact gradient: bptt and bptr coincide there, and
the modes that exist only for spiking neurons are refused):

    bptt      backpropagation through all T time steps, each spike's Heaviside replaced by a
              surrogate derivative: the training surrogate, or `attack_surrogate` if given
              (a training surrogate's name, or an attacker shape pcw:G, exp:G, rect:G).
    bptr      backpropagation through the spike rate (Ding et al. 2022, SNN-RAT).
    rga       rate gradient approximation (Bu et al., CVPR 2023).
    hart      rate and temporal information combined (Hao et al., ICLR 2024), `hart_gamma`.
    pdsg      potential-dependent Gaussian surrogate (Lun et al., CVPR 2025).
    assg      adaptive-sharpness atan surrogate (Wang et al., arXiv 2512.22522),
              `assg_sharpness`; its statistics restart with each attacked batch
              (`reset_attack_state`).
    transfer  examples crafted on a `source` model (usually the ANN twin; an SNN source is
              differentiated with bptt) and evaluated on the target, whose forward is never
              backpropagated.

Each mode's rule, constants and their sources: suite.attacks.spike_grads.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from suite.attacks.spike_grads import (ASSG, ASSG_A, HART_GAMMA, HARTLIF, RGALIF, RateLIF, SurrogateLIF,
                                       parse_shape, pdsg_surrogate, shape_surrogate)
from suite.attacks.foreign_grads import AttackerSpike, replace_foreign
from suite.errors import SuiteError
from suite.models import LIF, MeanLogits, mean_logits, set_surrogate

GRAD_MODES = ("bptt", "bptr", "rga", "hart", "pdsg", "assg", "transfer")
SPIKING_MODES = ("bptr", "rga", "hart", "pdsg", "assg")  # a backward of their own, for LIF layers only
SURROGATE_MODES = ("bptt", "transfer")  # the modes that differentiate a named surrogate

__all__ = ["GRAD_MODES", "SPIKING_MODES", "SURROGATE_MODES", "ModeOptions", "RateLIF", "attack_model",
           "check_source", "describe_gradient", "input_gradient", "is_snn", "reset_attack_state"]


@dataclass(frozen=True)
class ModeOptions:
    """The parameters of the modes that take one (checked by AttackConfig)."""

    hart_gamma: float = HART_GAMMA
    assg_sharpness: float = ASSG_A


def _stand_in(lif: LIF, grad: str, surrogate: str | None, options: ModeOptions) -> nn.Module | None:
    """What replaces `lif` in the attacker's copy for mode `grad` (None: the LIF itself, for bptt and
    transfer without an attacker shape)."""
    if grad == "bptr":
        return RateLIF(lif)
    if grad == "rga":
        return RGALIF(lif)
    if grad == "hart":
        return HARTLIF(lif, options.hart_gamma)
    if grad == "pdsg":
        return SurrogateLIF(lif, pdsg_surrogate)
    if grad == "assg":
        return SurrogateLIF(lif, ASSG(options.assg_sharpness))
    if surrogate is not None and parse_shape(surrogate) is not None:
        return SurrogateLIF(lif, shape_surrogate(surrogate))
    return None


def _replace_lifs(model: nn.Module, grad: str, surrogate: str | None, options: ModeOptions) -> int:
    """Swap every LIF child for its stand-in under mode `grad`, in place; returns how many LIFs."""
    targets = [(parent, name, child) for parent in model.modules()
               for name, child in parent.named_children() if isinstance(child, LIF)]
    for parent, name, child in targets:
        stand_in = _stand_in(child, grad, surrogate, options)
        if stand_in is not None:
            setattr(parent, name, stand_in)
    return len(targets)


def reset_attack_state(attacker: nn.Module) -> None:
    """Forget what a stateful mode (assg) learnt from the previous batch."""
    for m in attacker.modules():
        if isinstance(m, SurrogateLIF) and isinstance(m.grad, ASSG):
            m.grad.reset()
        elif isinstance(m, AttackerSpike):
            m.reset_attack()


def is_snn(model: nn.Module) -> bool:
    return getattr(model, "kind", None) == "snn"


def _frozen_copy(model: nn.Module) -> nn.Module:
    """A private eval-mode copy whose parameters need no gradient (only the input's is wanted)."""
    twin = copy.deepcopy(model).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


def check_source(grad: str | None, has_source: bool) -> None:
    """A source model exactly when the mode is transfer (the mode and surrogates themselves are
    checked by AttackConfig)."""
    if grad == "transfer" and not has_source:
        raise SuiteError("gradient mode transfer needs a source model (--source) to craft the examples on")
    if has_source and grad != "transfer":
        raise SuiteError("a source model (--source) only applies to gradient mode transfer"
                         + (f", not {grad}" if grad else " (--grad transfer)"))


def attack_model(model: nn.Module, grad: str = "bptt", attack_surrogate: str | None = None,
                 source: nn.Module | None = None, options: ModeOptions = ModeOptions()) -> MeanLogits:
    """The module torchattacks differentiates: [B, ...] in [0, 1] -> time-averaged logits [B, classes].
    `grad`, `attack_surrogate` and `options` as an AttackConfig checked them; `source` as
    `check_source` did."""
    if grad == "transfer":
        _check_compatible(model, source)
        crafted_on = source
    else:
        crafted_on = model
    twin = _frozen_copy(crafted_on)
    if grad in SPIKING_MODES and grad != "bptr" and not is_snn(twin):
        raise SuiteError(f"gradient mode {grad} is a rule for spiking neurons; the model is an ANN "
                         f"(attack it with bptt, its exact gradient)")
    if is_snn(twin):
        shape = attack_surrogate is not None and parse_shape(attack_surrogate) is not None
        # transfer crafts on the source by bptt: _stand_in treats it as bptt (a shape, or the LIF itself)
        own = _replace_lifs(twin, grad, attack_surrogate, options)
        foreign = replace_foreign(twin, grad, attack_surrogate, options.hart_gamma, options.assg_sharpness)
        if own + foreign == 0 and grad in SPIKING_MODES:
            raise SuiteError(f"{grad} needs spiking neurons, and this SNN has none the suite recognises")
        if attack_surrogate is not None and not shape and own:
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
    elif grad in SPIKING_MODES:
        how, surrogate = grad, "-"
    else:
        how = "bptt"
        own = getattr(crafted_on, "surrogate_words", None)
        surrogate = attack_surrogate or (own() if callable(own) else "?")
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
