"""Spiking neurons built by other frameworks, seen through one view (`NeuronView`): what the
suite's attacks, CKA and state handling need of a neuron it did not build.

Recognised from the class hierarchy, without importing the framework:
- spikingjelly's `activation_based` nodes, 0.0.0.0.14 and 2.x: any subclass of `BaseNode`
  (IFNode, LIFNode, ParametricLIFNode, ...). The charge of the LIF family, with v_r the reset
  potential (0 for a soft reset), is h_t = v_{t-1} - (v_{t-1} - v_r)/tau + x_t
  (`decay_input=False`) or v_{t-1} + (x_t - (v_{t-1} - v_r))/tau (`decay_input=True`), IF's
  h_t = v_{t-1} + x_t, ParametricLIF's 1/tau = sigmoid(w); spikes s_t = H(h_t - v_threshold)
  with H(0) = 1 (`surrogate.heaviside` is x >= 0); then a hard reset to v_reset or a soft one
  (h - v_threshold), the spike detached when `detach_reset`.
- snntorch's neurons: any subclass of `SpikingNeuron` (Leaky, Synaptic, Alpha, Lapicque, RLeaky,
  RSynaptic, ...). Leaky: m_t = beta m_{t-1} + x_t less the reset of the previous step;
  spikes H(m_t - threshold) with H(0) = 0 (every snntorch surrogate's forward is x > 0).
- classes the user names (a model file's `neurons`): spiking, state reset by their `reset()`
  if they have one; nothing else is assumed of them.

The traps each view handles (issue 29; each has a test that fails without its handling):
- spikingjelly 0.0.0.0.14's IFNode and LIFNode fire through TorchScript `jit_eval_*` paths when
  not training, which build no graph: an attack in eval mode sees no input gradient and robustness
  looks perfect. The adapter (suite.models.adapter) puts the neurons, and only them, in training
  mode for every pass that wants a gradient; their forward is the same there, and they hold no
  running statistics.
- State between forward passes: spikingjelly keeps memories until `reset()`; snntorch keeps
  `mem` (and `syn`, `spk`) on the module. `reset` clears this neuron only. snntorch's own
  `utils.reset` acts on every live instance in the process and only on top-level children
  (snntorch issue #438, PR #414), so it is not used.
- CUDA backends that ignore a Python surrogate: spikingjelly 0.0.0.0.14's cupy backend generates
  its backward from the surrogate's class. `use_torch_backend` sets the backend to "torch" in an
  attacker's copy. (2.x has no backend switch: an attacker's own surrogate module sends it to its
  reference path, which calls the module.)
- Learnable neuron parameters (ParametricLIF's `w`, KLIF's `k`, snntorch's `learn_beta`,
  `learn_threshold`): `parameters` lists them; an attacker's copy freezes every parameter.
- snntorch surrogates are closures whose width cannot be read back: `surrogate_words` says what
  a view knows, and the suite records what it installs itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from suite.errors import SuiteError

SJ_BASE = ("spikingjelly.activation_based", "BaseNode")  # module prefix, class name
SNNTORCH_BASE = ("snntorch", "SpikingNeuron")


def _has_base(module: nn.Module, base: tuple[str, str]) -> bool:
    prefix, name = base
    return any(c.__name__ == name and c.__module__.startswith(prefix) for c in type(module).__mro__)


def framework_of(module: nn.Module, user_classes: tuple[str, ...] = ()) -> str | None:
    """"spikingjelly", "snntorch" or "user" for a spiking neuron module, else None. `user_classes`
    are class names (or module.Class paths) a model file names as its neurons."""
    if _has_base(module, SJ_BASE):
        return "spikingjelly"
    if _has_base(module, SNNTORCH_BASE):
        return "snntorch"
    cls = type(module)
    if cls.__name__ in user_classes or f"{cls.__module__}.{cls.__name__}" in user_classes:
        return "user"
    return None


def _number(value) -> float | None:
    """A scalar option or buffer as a float; None for a tensor of several values."""
    if isinstance(value, torch.Tensor):
        return float(value.detach()) if value.numel() == 1 else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class NeuronView:
    """One foreign spiking neuron: its framework, how it runs over time, and what of its
    dynamics is known (None: unknown, and a gradient rule that needs it is refused)."""

    name: str
    module: nn.Module
    framework: str

    @property
    def kind(self) -> str:
        return type(self.module).__name__

    @property
    def multi_step(self) -> bool:
        """Whether one call takes the whole sequence [T, B, ...] (spikingjelly's step_mode "m");
        else it runs one time step per call (the model loops over T)."""
        return self.framework == "spikingjelly" and getattr(self.module, "step_mode", "s") == "m"

    @property
    def spike_attribute(self) -> str | None:
        """The attribute holding its spike function (Heaviside forward, surrogate backward), which
        an attacker may replace; None for a user's neuron (unknown)."""
        return {"spikingjelly": "surrogate_function", "snntorch": "spike_grad"}.get(self.framework)

    @property
    def fires_at_zero(self) -> bool:
        """H(0): spikingjelly spikes at v = threshold, snntorch (and the suite's LIF) does not."""
        return self.framework == "spikingjelly"

    @property
    def threshold(self) -> float | None:
        m = self.module
        if self.framework == "spikingjelly":
            return _number(getattr(m, "v_threshold", None))
        if self.framework == "snntorch":
            return _number(getattr(m, "threshold", None))
        return None

    def recurrence(self) -> tuple[float, float] | None:
        """(leak, input scale) of the charge between spikes, u_t = leak u_{t-1} + scale x_t (reset
        potential 0), where the neuron is of the LIF family; None otherwise."""
        m, kind = self.module, self.kind
        if self.framework == "spikingjelly":
            if getattr(m, "v_reset", 0.0) not in (0.0, None):
                return None  # a reset potential other than 0 adds a constant to the charge
            if kind == "IFNode":
                return 1.0, 1.0
            if kind == "LIFNode":
                inv_tau = 1.0 / float(m.tau)
            elif kind == "ParametricLIFNode":
                inv_tau = float(torch.sigmoid(m.w.detach()))
            else:
                return None
            return 1.0 - inv_tau, (inv_tau if m.decay_input else 1.0)
        if self.framework == "snntorch" and kind == "Leaky":
            beta = _number(m.beta)
            return (min(max(beta, 0.0), 1.0), 1.0) if beta is not None else None  # beta.clamp(0, 1)
        return None

    @property
    def parameters(self) -> list[str]:
        """Its learnable parameters (ParametricLIF's w, snntorch's learn_beta / learn_threshold)."""
        return [n for n, _ in self.module.named_parameters()]

    def surrogate_words(self) -> str:
        """Its own surrogate, as far as it can be read: spikingjelly's class and alpha;
        snntorch's closure by the name of the function that made it (its width is closed over)."""
        fn = getattr(self.module, self.spike_attribute, None) if self.spike_attribute else None
        if fn is None:
            return "its own"
        if self.framework == "spikingjelly":
            alpha = getattr(fn, "alpha", None)
            return f"{type(fn).__name__}" + (f"(alpha={alpha:g})" if isinstance(alpha, (int, float)) else "")
        qual = getattr(fn, "__qualname__", type(fn).__name__)
        return f"snntorch {qual.split('.')[0]} (a closure: its width is not readable)"

    def reset(self) -> None:
        """Clear this neuron's state (and only this neuron's)."""
        m = self.module
        if self.framework == "spikingjelly" or (self.framework == "user" and callable(getattr(m, "reset", None))):
            m.reset()
        elif self.framework == "snntorch":
            for state in ("mem", "syn", "syn_exc", "syn_inh", "spk"):
                value = getattr(m, state, None)
                if isinstance(value, torch.Tensor):
                    setattr(m, state, torch.zeros_like(value))

    def set_spike_function(self, fn: nn.Module) -> None:
        """Put `fn` where its spike function is (an attacker's surrogate). snntorch calls its spike
        function a second time per step, for the next step's reset (`mem_reset`, detached): that
        call keeps the Heaviside, so `fn` sees each step's v once, as in spikingjelly."""
        m = self.module
        swap(m, self.spike_attribute, fn)
        if self.framework == "snntorch":
            m.mem_reset = _HeavisideReset(m)

    def use_torch_backend(self) -> None:
        """Its backward from its Python surrogate: spikingjelly 0.0.0.0.14's cupy backend builds
        its own from the surrogate's class."""
        if getattr(self.module, "backend", "torch") != "torch":
            self.module.backend = "torch"


def swap(module: nn.Module, attribute: str, value) -> None:
    """Set `module.attribute` whether it holds a child module (spikingjelly's surrogate) or a
    plain function (snntorch's), and whatever `value` is."""
    if attribute in module._modules:
        del module._modules[attribute]
    setattr(module, attribute, value)


class _HeavisideReset:
    """snntorch's `mem_reset` (the spike of the previous membrane, detached) without calling the
    spike function: H(mem - threshold) with H(0) = 0."""

    def __init__(self, neuron: nn.Module):
        self.neuron = neuron

    def __call__(self, mem: torch.Tensor) -> torch.Tensor:
        return heaviside((mem - self.neuron.threshold).detach(), at_zero=False)


def find_neurons(net: nn.Module, user_classes: tuple[str, ...] = ()) -> list[NeuronView]:
    """Every spiking neuron of `net` (outermost only: a neuron inside a neuron is its part)."""
    views: list[NeuronView] = []
    for name, module in net.named_modules():
        if any(name.startswith(v.name + ".") for v in views):
            continue
        framework = framework_of(module, user_classes)
        if framework is not None:
            views.append(NeuronView(name, module, framework))
    return views


def check_neurons(views: list[NeuronView]) -> None:
    """Refuse what the suite cannot run as it runs: spikingjelly's cupy backend outside CUDA
    (it fails inside the framework with an error about cupy)."""
    for v in views:
        if getattr(v.module, "backend", "torch") == "cupy" and not torch.cuda.is_available():
            raise SuiteError(f"neuron {v.name} ({v.kind}) uses spikingjelly's cupy backend, which needs "
                             "CUDA; set backend='torch' in the model's factory")


def heaviside(v: torch.Tensor, at_zero: bool) -> torch.Tensor:
    """The spike of a shifted membrane v = u - threshold, in v's dtype: v >= 0 or v > 0."""
    return (v >= 0 if at_zero else v > 0).to(v.dtype)


__all__ = ["NeuronView", "check_neurons", "find_neurons", "framework_of", "heaviside"]
