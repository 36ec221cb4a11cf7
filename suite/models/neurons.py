"""Multi-step LIF neurons on snntorch's surrogate gradient functions, chosen by name.

A LIF layer receives the merged batch [T*B, ...] (T-major), loops over T only, and returns
spikes in the same layout, so every other layer (conv, BatchNorm, linear) runs once on the
whole [T*B] batch. Dynamics, with hard reset to zero and leak beta = 1 - 1/tau:

    u_t = beta * u_{t-1} * (1 - s_{t-1}) + x_t
    s_t = Heaviside(u_t - threshold)      (backward: the chosen surrogate's derivative)

The reset s_{t-1} is detached by default, as in snntorch's neurons: gradients flow through
the membrane, not through the reset decision.

One surrogate is our own: snntorch 1.0's `sigmoid` backward computes
exp(-k x) / (exp(-k x) + 1)^2, which is inf/inf = NaN once k*x < -44 in float32 (membrane
more than 1.8 below threshold at slope 25: common). `StableSigmoid` computes the same
derivative as k * sigmoid(k x) * (1 - sigmoid(k x)), finite everywhere.
"""

from __future__ import annotations

from typing import Callable

import torch
from snntorch import surrogate as sg
from torch import nn

from suite.errors import SuiteError

class StableSigmoid(torch.autograd.Function):
    """Heaviside forward; derivative of sigmoid(slope * x) backward, without overflow."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.slope * x)
        return grad_out * ctx.slope * sig * (1 - sig), None


def stable_sigmoid(slope: float = 25.0) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: StableSigmoid.apply(x, slope)


# name -> factory of snntorch surrogate spike functions (input: u - threshold)
SURROGATES: dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]] = {
    "atan": lambda: sg.atan(alpha=2.0),
    "fast_sigmoid": lambda: sg.fast_sigmoid(slope=25),
    "sigmoid": lambda: stable_sigmoid(slope=25.0),
    "triangular": lambda: sg.triangular(threshold=1.0),
    "ste": lambda: sg.straight_through_estimator(),
    "spike_rate_escape": lambda: sg.spike_rate_escape(beta=1, slope=25),
}


def get_surrogate(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """snntorch surrogate spike function by name; an unknown name lists the valid ones."""
    try:
        return SURROGATES[name]()
    except KeyError:
        raise SuiteError(f"unknown surrogate {name!r}; choose one of: {', '.join(sorted(SURROGATES))}") from None


class LIF(nn.Module):
    """Leaky integrate-and-fire layer over the merged [T*B, ...] batch; see module docstring."""

    def __init__(self, timesteps: int, tau: float = 2.0, threshold: float = 1.0,
                 surrogate: str = "atan", detach_reset: bool = True):
        super().__init__()
        if tau < 1.0:
            raise SuiteError(f"LIF tau must be >= 1 (leak 1 - 1/tau in [0, 1)), got {tau}")
        self.timesteps = timesteps
        self.beta = 1.0 - 1.0 / tau
        self.threshold = threshold
        self.detach_reset = detach_reset
        self.set_surrogate(surrogate)

    def set_surrogate(self, name: str) -> None:
        """Swap the surrogate used in backward (e.g. an attacker's choice); forward is unchanged."""
        self.spike_fn = get_surrogate(name)
        self.surrogate = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = self.timesteps
        xs = x.view(T, x.shape[0] // T, *x.shape[1:])  # [T, B, ...]
        u = torch.zeros_like(xs[0])
        s = torch.zeros_like(xs[0])
        spikes = []
        for t in range(T):
            keep = 1.0 - (s.detach() if self.detach_reset else s)
            u = self.beta * u * keep + xs[t]
            s = self.spike_fn(u - self.threshold)
            spikes.append(s)
        return torch.stack(spikes).view_as(x)  # [T*B, ...]

    def extra_repr(self) -> str:
        return (f"T={self.timesteps}, beta={self.beta:.3f}, threshold={self.threshold}, "
                f"surrogate={self.surrogate}")


def set_surrogate(model: nn.Module, name: str) -> None:
    """Use surrogate `name` in every LIF layer of `model`."""
    get_surrogate(name)  # validate once, before touching the model
    for m in model.modules():
        if isinstance(m, LIF):
            m.set_surrogate(name)
