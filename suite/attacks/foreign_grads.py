"""The SNN gradient modes on spiking neurons of other frameworks (suite.models.foreign), in an
attacker's private copy. Each mode is the rule of suite.attacks.spike_grads, applied where the
foreign neuron lets it in:

- through its spike function (bptt with an attacker's surrogate or shape, pdsg, assg): the
  function that turns v = h - threshold into spikes (spikingjelly's `surrogate_function`,
  snntorch's `spike_grad`) is replaced by `AttackerSpike`: the same Heaviside forward (H(0) as
  the framework has it), the mode's f'(v_t) backward; the neuron's own recurrence, reset and
  leak stay as its framework wrote them, and autograd runs BPTT through them. It is called once
  per time step, in a multi-step spikingjelly node too, so pdsg's width (the spread of v over
  steps 0..t) and assg's statistics (per step and element) are kept per step.
- around the whole neuron (bptr, rga, hart, whose rules need the whole sequence at once): a
  multi-step neuron ([T, B, ...] per call) is wrapped by `SequenceRule`, which runs the neuron's
  own forward, spike for spike, records every step's v, and gives its input the rule's gradient.
  A neuron that runs one step per call (the model loops over T in its forward) cannot be
  wrapped so: the mode is refused for it, naming the neuron and the reason.
- bptt with the neuron's own surrogate and transfer replace nothing.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from suite.attacks.spike_grads import (ASSG, ASSG_A, HART_GAMMA, SurrogateGrad, _SpikesWithGrad, bptr_grad,
                                       hart_grad, parse_shape, pdsg_density, pdsg_sigma, rga_grad,
                                       shape_surrogate)
from suite.errors import SuiteError
from suite.models.foreign import NeuronView, heaviside, swap
from suite.models.neurons import autograd_surrogate_grad, get_surrogate, surrogate_grad

SEQUENCE_MODES = ("bptr", "rga", "hart")  # rules over the whole sequence
SPIKE_MODES = ("pdsg", "assg")  # rules on each step's v, through the spike function


class AttackerSpike(nn.Module):
    """A foreign neuron's spike function under an attacker's surrogate (module docstring).

    `rule`: "surrogate" (a fixed f' given as `grad(v, G, out, buf)`), "pdsg" or "assg"."""

    def __init__(self, rule: str, at_zero: bool, grad: SurrogateGrad | None = None, sharpness: float = ASSG_A):
        super().__init__()
        self.rule, self.at_zero, self.grad, self.sharpness = rule, at_zero, grad, sharpness
        self.assg: dict[int, ASSG] = {}  # per time step; restarts with every attacked batch
        self.begin_forward()

    def begin_forward(self) -> None:
        """A new forward pass: step 0 again (the model calls this before every pass)."""
        self.t = 0
        self.history: list[Tensor] = []

    def reset_attack(self) -> None:
        """A new attacked batch: assg forgets its statistics."""
        self.assg = {}

    def forward(self, v: Tensor) -> Tensor:
        t = self.t
        self.t += 1
        if self.rule == "pdsg":
            self.history.append(v.detach())
        spikes = heaviside(v.detach(), self.at_zero)
        if not (torch.is_grad_enabled() and v.requires_grad):
            return spikes
        # this pass's history goes with the step: backward comes after the model's next begin_forward
        return _SpikesWithGrad.apply(v, spikes, partial(self._input_grad, t, v.detach(), self.history))

    def _input_grad(self, t: int, v: Tensor, history: list[Tensor], G: Tensor) -> Tensor:
        if self.rule == "pdsg":  # sigma over steps 0..t of this forward pass, per channel (dim 1)
            return G * pdsg_density(v, pdsg_sigma(torch.stack(history[: t + 1]))[-1])
        out = torch.empty_like(v)
        if self.rule == "assg":
            stats = self.assg.setdefault(t, ASSG(self.sharpness))
            stats(v.unsqueeze(0), G.unsqueeze(0), out.unsqueeze(0), torch.empty_like(out).unsqueeze(0))
            return out
        self.grad(v, G, out, torch.empty_like(v))
        return out


class _Recorder(nn.Module):
    """A spike function that records each step's v and spikes as the framework does."""

    def __init__(self, at_zero: bool):
        super().__init__()
        self.at_zero, self.vs = at_zero, []

    def forward(self, v: Tensor) -> Tensor:
        self.vs.append(v.detach())
        return heaviside(v.detach(), self.at_zero)


class SequenceRule(nn.Module):
    """A multi-step foreign neuron under a whole-sequence rule (bptr, rga or hart): its own forward
    on x [T, B, ...], spike for spike, and the rule's gradient to x (module docstring)."""

    def __init__(self, view: NeuronView, mode: str, gamma: float = HART_GAMMA):
        super().__init__()
        self.neuron, self.mode, self.gamma = view.module, mode, gamma
        self.attribute, self.at_zero = view.spike_attribute, view.fires_at_zero
        self.threshold, self.recurrence = view.threshold, view.recurrence()
        self.__dict__["view"] = view

    def forward(self, x: Tensor) -> Tensor:
        recorder, own = _Recorder(self.at_zero), getattr(self.neuron, self.attribute)
        swap(self.neuron, self.attribute, recorder)
        try:
            with torch.no_grad():
                self.view.reset()
                spikes = self.neuron(x.detach())
        finally:
            swap(self.neuron, self.attribute, own)
            self.view.reset()
        if not (torch.is_grad_enabled() and x.requires_grad):
            return spikes
        xs = x.detach()
        if self.mode == "bptr":
            rule = bptr_grad(spikes, self.threshold)
        elif self.mode == "rga":
            leak, scale = self.recurrence
            rule = rga_grad(xs, leak, self.threshold, scale)
        else:
            rule = hart_grad(torch.stack(recorder.vs), self.gamma)
        return _SpikesWithGrad.apply(x, spikes, rule)


def _surrogate(name: str) -> SurrogateGrad:
    """An attacker's surrogate by name: a shape (pcw:W, exp:W, rect:W) or one of the suite's."""
    if parse_shape(name) is not None:
        return shape_surrogate(name)
    return surrogate_grad(name) or autograd_surrogate_grad(get_surrogate(name))


def foreign_stand_in(view: NeuronView, grad: str, surrogate: str | None, hart_gamma: float,
                     assg_sharpness: float) -> tuple[str, nn.Module] | None:
    """What mode `grad` (with attacker surrogate `surrogate`) puts in place of a foreign neuron:
    ("spike", module) for its spike function, ("neuron", module) for the neuron itself, or None
    (its own surrogate: nothing replaced). SuiteError naming the neuron where the mode cannot run."""
    where = f"neuron {view.name} ({view.framework} {view.kind})"
    if grad in SEQUENCE_MODES:
        if not view.multi_step:
            raise SuiteError(f"gradient mode {grad} needs each spiking layer's whole input sequence in one call; "
                             f"{where} runs one time step per call (the model loops over T in its forward): "
                             f"use bptt, pdsg, assg or transfer")
        if view.spike_attribute is None or view.threshold is None:
            raise SuiteError(f"gradient mode {grad} needs the neuron's threshold and spike function; {where} "
                             f"names neither")
        if grad == "rga" and view.recurrence() is None:
            raise SuiteError(f"gradient mode rga needs a LIF-family neuron with reset potential 0 (its leak); "
                             f"{where} is not one")
        return "neuron", SequenceRule(view, grad, hart_gamma)
    if grad in SPIKE_MODES or (surrogate is not None and grad in ("bptt", "transfer")):
        if view.spike_attribute is None:
            what = f"gradient mode {grad}" if grad in SPIKE_MODES else f"attacker surrogate {surrogate}"
            raise SuiteError(f"{what} replaces the neuron's spike function; {where} names none")
        if grad in SPIKE_MODES:
            return "spike", AttackerSpike(grad, view.fires_at_zero, sharpness=assg_sharpness)
        return "spike", AttackerSpike("surrogate", view.fires_at_zero, _surrogate(surrogate))
    return None


def replace_foreign(model: nn.Module, grad: str, surrogate: str | None, hart_gamma: float,
                    assg_sharpness: float) -> int:
    """Every foreign neuron of `model` (an attacker's private copy) put on its torch backend and
    given mode `grad`'s stand-in, in place; returns how many neurons."""
    views = model.neuron_views() if callable(getattr(model, "neuron_views", None)) else []
    plans = [(v, foreign_stand_in(v, grad, surrogate, hart_gamma, assg_sharpness)) for v in views]  # refuse first
    for view, plan in plans:
        view.use_torch_backend()
        if plan is None:
            continue
        where, module = plan
        if where == "spike":
            view.set_spike_function(module)
        else:
            model.replace_module(view.name, module)
    return len(views)
