"""Multi-step LIF neurons on snntorch's surrogate gradient functions, chosen by name.

A LIF layer receives the merged batch [T*B, ...] (T-major), loops over T only, and returns
spikes in the same layout, so every other layer (conv, BatchNorm, linear) runs once on the
whole [T*B] batch. Dynamics, with hard reset to zero and leak beta = 1 - 1/tau:

    u_t = beta * u_{t-1} * (1 - s_{t-1}) + x_t          (u_{-1} = s_{-1} = 0)
    s_t = Heaviside(u_t - threshold)      (backward: the chosen surrogate's derivative)

The reset s_{t-1} is detached by default, as in snntorch's neurons: gradients flow through
the membrane, not through the reset decision.

Implementation: the whole recurrence over T is one autograd node (`LIFScan`) instead of a
graph of ~8 small ops per step. Forward works in place on one time step's buffer and keeps
a single [T, B, ...] tensor for backward: the shifted membrane v_t = u_t - threshold (spikes
are recomputed from it as s_t = [v_t > 0]). Backward is the exact BPTT of the equations
above. With g_t = dL/du_t (= dL/dx_t), G_t = dL/ds_t arriving from the next layer, and f'
the surrogate's derivative:

    detached reset:   g_t = f'(v_t) G_t + beta (1 - s_t) g_{t+1}            (g_T = 0)
    reset in graph:   s_t also drives the next reset, du_{t+1}/ds_t = -beta u_t, so
                      g_t = f'(v_t) (G_t - beta u_t g_{t+1}) + beta (1 - s_t) g_{t+1}
                      (this case keeps u instead of v; v = u - threshold is recomputed)

Two implementations of forward and backward, tested against each other and the reference:
- On CPU with float32 tensors, a fused C kernel (lif_kernel.c, compiled on first use; see
  lif_kernel.py) handles each element's whole time series in one pass each way. Element-wise
  PyTorch ops cost ~6 memory passes per time step, which made the LIF ~20% of an SNN
  training step; with the kernel the step is within a few percent of the ANN twin's times T.
- Everywhere else (CUDA, float64, no C compiler) PyTorch ops: forward per time step in place;
  backward with a detached reset computes f'(v_t) G_t for all t at once, then one fused
  multiply-add per step (g_t += beta (1 - s_t) g_{t+1}); with the reset in the graph it runs
  backwards one time step at a time.
Spikes come out in x's dtype and are bit-identical to the per-step autograd reference;
gradients agree with it to float rounding (tests/models/test_lif.py states the tolerances).

f'(v) G comes from a table of the surrogates' derivatives (`surrogate_grad`), each the
formula of that snntorch surrogate's own backward with the same parameters (tests check
them against snntorch's autograd). A spike function without a table entry (a name added to
SURROGATES alone, or a function assigned by hand to `LIF.spike_fn`) still works: backward
then calls it on v_t, a detached leaf, and takes its vector-Jacobian product, i.e. runs the
surrogate's own backward.

One surrogate is our own: snntorch 1.0's `sigmoid` backward computes
exp(-k x) / (exp(-k x) + 1)^2, which is inf/inf = NaN once k*x < -44 in float32 (membrane
more than 1.8 below threshold at slope 25: common). `StableSigmoid` computes the same
derivative as k * sigmoid(k x) * (1 - sigmoid(k x)), finite everywhere.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch
from snntorch import surrogate as sg
from torch import nn
from torch.autograd.function import once_differentiable

from suite import defaults as D
from suite.errors import SuiteError
from suite.models import lif_kernel
from suite.models.lif_kernel import KernelSpec

SpikeFn = Callable[[torch.Tensor], torch.Tensor]
# (v, grad, out, scratch) -> None: out = f'(v) * grad; scratch: a buffer shaped like v
SurrogateGrad = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]


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


def stable_sigmoid(slope: float = 25.0) -> SpikeFn:
    return lambda x: StableSigmoid.apply(x, slope)


# ---- surrogate derivatives: each the matching backward's formula (snntorch 1.0), evaluated in
# ---- the same order, so the gradients are the same floats


def _atan_grad(alpha: float) -> SurrogateGrad:
    """alpha/2 / (1 + (pi/2 alpha v)^2)"""
    def grad(v, g, out, buf):
        torch.mul(v, math.pi / 2 * alpha, out=buf)
        buf.mul_(buf).add_(1).reciprocal_().mul_(alpha / 2)
        torch.mul(buf, g, out=out)
    return grad


def _fast_sigmoid_grad(slope: float) -> SurrogateGrad:
    """1 / (slope |v| + 1)^2"""
    def grad(v, g, out, buf):
        torch.abs(v, out=buf).mul_(slope).add_(1)
        buf.mul_(buf)
        torch.div(g, buf, out=out)
    return grad


def _sigmoid_grad(slope: float) -> SurrogateGrad:
    """slope sig (1 - sig), sig = sigmoid(slope v)  (StableSigmoid's backward)"""
    def grad(v, g, out, buf):
        torch.mul(v, slope, out=buf).sigmoid_()
        torch.mul(g, slope, out=out).mul_(buf)
        out.mul_(buf.neg_().add_(1))
    return grad


def _triangular_grad(threshold: float) -> SurrogateGrad:
    """threshold where v < 0, -threshold where v >= 0 (sic: snntorch's Triangular backward)"""
    def grad(v, g, out, buf):
        torch.ge(v, 0, out=buf).mul_(-2 * threshold).add_(threshold)
        torch.mul(g, buf, out=out)
    return grad


def _ste_grad(v, g, out, buf):
    """1"""
    out.copy_(g)


def _spike_rate_escape_grad(beta: float, slope: float) -> SurrogateGrad:
    """slope exp(-beta |v - 1|)"""
    def grad(v, g, out, buf):
        torch.sub(v, 1, out=buf).abs_().mul_(-beta).exp_()
        torch.mul(g, slope, out=out).mul_(buf)
    return grad


# The one table of surrogate parameters, as snntorch names them (their order is the fused
# kernel's p1, p2). atan's alpha=2 is snntorch's default; slope 25 is snntorch's default for
# the sigmoid family and spike_rate_escape (beta=1).
SURROGATE_PARAMS: dict[str, dict[str, float]] = {
    "atan": {"alpha": 2.0},
    "fast_sigmoid": {"slope": 25.0},
    "sigmoid": {"slope": 25.0},
    "triangular": {"threshold": 1.0},
    "ste": {},
    "spike_rate_escape": {"beta": 1.0, "slope": 25.0},
}
# name -> (the spike function's factory (input: u - threshold), its derivative's factory),
# both called with the name's parameters
_FACTORIES: dict[str, tuple[Callable[..., SpikeFn], Callable[..., SurrogateGrad]]] = {
    "atan": (sg.atan, _atan_grad),
    "fast_sigmoid": (sg.fast_sigmoid, _fast_sigmoid_grad),
    "sigmoid": (stable_sigmoid, _sigmoid_grad),
    "triangular": (sg.triangular, _triangular_grad),
    "ste": (sg.straight_through_estimator, lambda: _ste_grad),
    "spike_rate_escape": (sg.spike_rate_escape, _spike_rate_escape_grad),
}
SURROGATES: dict[str, Callable[[], SpikeFn]] = {
    name: partial(make_fn, **SURROGATE_PARAMS[name]) for name, (make_fn, _) in _FACTORIES.items()
}
SURROGATE_KERNEL: dict[str, KernelSpec] = {
    name: lif_kernel.spec(name, *SURROGATE_PARAMS[name].values()) for name in _FACTORIES
}


def surrogate_grad(name: str) -> SurrogateGrad | None:
    """The table's derivative for surrogate `name` with its parameters, or None if it has no entry.

    Built on each call (a closure: cheap) rather than once at import, so what a LIF layer runs
    is always what this module's functions say now (mutation tests swap them after import)."""
    if name not in _FACTORIES:
        return None
    return _FACTORIES[name][1](**SURROGATE_PARAMS[name])


def get_surrogate(name: str) -> SpikeFn:
    """snntorch surrogate spike function by name; an unknown name lists the valid ones."""
    try:
        return SURROGATES[name]()
    except KeyError:
        raise SuiteError(f"unknown surrogate {name!r}; choose one of: {', '.join(sorted(SURROGATES))}") from None


def autograd_surrogate_grad(spike_fn: SpikeFn) -> SurrogateGrad:
    """out = f'(v) * grad by running `spike_fn`'s own backward: for spike functions not in the table."""
    def grad(v, g, out, buf):
        with torch.enable_grad():
            leaf = v.detach().requires_grad_(True)
            (d,) = torch.autograd.grad(spike_fn(leaf), leaf, g)
        out.copy_(d)
    return grad


# ---- the LIF recurrence ----------------------------------------------------------------------


def _scan(xs: torch.Tensor, beta: float, threshold: float, keep: str | None):
    """Run the LIF recurrence over xs [T, B, ...] without autograd.

    Returns (spikes, kept): spikes [T, B, ...] in xs.dtype; kept is v = u - threshold
    (keep="v"), u (keep="u") or None. Each step evaluates the reference expressions
    `beta * u * (1 - s) + x` and `(u - threshold) > 0` in the same order, so the spikes are
    bit-identical to a per-step autograd implementation. On CPU float32 the fused kernel
    (lif_kernel.c) does the same in one pass.
    """
    if lif_kernel.usable(xs):
        return lif_kernel.forward(xs, beta, threshold, keep)
    T = xs.shape[0]
    spikes = torch.empty_like(xs)
    U = torch.empty_like(xs) if keep == "u" else None
    V = torch.empty_like(xs) if keep == "v" else None
    one = xs.new_ones(())
    u_buf = torch.empty_like(xs[0]) if U is None and T > 1 else None  # u_t for t >= 1
    v = reset = None
    for t in range(T):
        if t == 0:  # u_{-1} = 0, so u_0 = x_0 (only read: x is not modified)
            u = xs[0] if U is None else U[0].copy_(xs[0])
        else:
            u = U[t] if U is not None else u_buf
            torch.mul(u_prev, beta, out=u)
            reset = torch.sub(one, spikes[t - 1], out=reset)  # 1 - s_{t-1}
            u.mul_(reset).add_(xs[t])
        v = torch.sub(u, threshold, out=V[t] if V is not None else v)
        torch.gt(v, 0, out=spikes[t])
        u_prev = u
    return spikes, (V if keep == "v" else U)


class LIFScan(torch.autograd.Function):
    """LIF over T as one autograd node; the maths is in the module docstring.

    Keeps one [T, B, ...] tensor for backward: v = u - threshold (detached reset) or u (reset
    in the graph). First derivatives only (backward is `once_differentiable`).
    """

    @staticmethod
    def forward(ctx, x, timesteps: int, beta: float, threshold: float, detach_reset: bool,
                surrogate_grad: SurrogateGrad, kernel_spec: KernelSpec | None):
        xs = x.view(timesteps, x.shape[0] // timesteps, *x.shape[1:])  # [T, B, ...]
        spikes, kept = _scan(xs, beta, threshold, "v" if detach_reset else "u")
        ctx.save_for_backward(kept)
        ctx.beta, ctx.threshold, ctx.detach_reset = beta, threshold, detach_reset
        ctx.surrogate_grad = surrogate_grad
        # backward takes the kernel iff forward did (and the surrogate is in its table)
        ctx.kernel_spec = kernel_spec if lif_kernel.usable(xs) else None
        return spikes.view_as(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (kept,) = ctx.saved_tensors
        if ctx.kernel_spec is not None:
            g = lif_kernel.backward(kept, grad_out.contiguous().view(kept.shape), ctx.beta, ctx.threshold,
                                    ctx.detach_reset, ctx.kernel_spec)
        elif ctx.detach_reset:
            g = _bptt_detached_reset(kept, grad_out.view(kept.shape), ctx.beta, ctx.surrogate_grad)
        else:
            g = _bptt_reset_in_graph(kept, grad_out.view(kept.shape), ctx.beta, ctx.threshold,
                                     ctx.surrogate_grad)
        return g.view(grad_out.shape), None, None, None, None, None, None


def _bptt_detached_reset(v: torch.Tensor, G: torch.Tensor, beta: float,
                         surrogate_grad: SurrogateGrad) -> torch.Tensor:
    """dL/dx from v [T, ...] and G = dL/ds: f'(v_t) G_t for all t at once, then one fused
    multiply-add per step, g_t += beta (1 - s_t) g_{t+1}."""
    g = torch.empty_like(v)
    surrogate_grad(v, G, g, torch.empty_like(v))
    if v.shape[0] > 1:
        decay = torch.le(v[:-1], 0).to(v.dtype).mul_(beta)  # beta (1 - s_t): 0 or beta
        for t in range(v.shape[0] - 2, -1, -1):
            g[t].addcmul_(decay[t], g[t + 1])
    return g


def _bptt_reset_in_graph(u: torch.Tensor, G: torch.Tensor, beta: float, threshold: float,
                         surrogate_grad: SurrogateGrad) -> torch.Tensor:
    """dL/dx from u [T, ...] and G = dL/ds, one time step at a time backwards:
    g_t = f'(v_t) (G_t - beta u_t g_{t+1}) + beta (1 - s_t) g_{t+1}."""
    T = u.shape[0]
    g = torch.empty_like(u)
    buf, v, reset_grad = torch.empty_like(u[0]), torch.empty_like(u[0]), torch.empty_like(u[0])
    for t in range(T - 1, -1, -1):
        grad_s = G[t]
        torch.sub(u[t], threshold, out=v)
        if t < T - 1:  # dL/ds_t = G_t - beta u_t g_{t+1}
            torch.mul(u[t], beta, out=reset_grad).mul_(g[t + 1])
            grad_s = torch.sub(G[t], reset_grad, out=reset_grad)
        surrogate_grad(v, grad_s, g[t], buf)  # f'(v_t) dL/ds_t
        if t < T - 1:  # + beta (1 - s_t) g_{t+1}
            torch.gt(v, 0, out=buf).mul_(-beta).add_(beta)  # exactly 0 or beta
            g[t].add_(buf.mul_(g[t + 1]))
    return g


class LIF(nn.Module):
    """Leaky integrate-and-fire layer over the merged [T*B, ...] batch; see module docstring."""

    def __init__(self, timesteps: int, tau: float = D.TAU, threshold: float = D.THRESHOLD,
                 surrogate: str = D.SURROGATE, detach_reset: bool = True):
        """tau, threshold and T as a `ModelSpec` checked them (tau >= 1: leak in [0, 1))."""
        super().__init__()
        self.timesteps = timesteps
        self.beta = 1.0 - 1.0 / tau
        self.threshold = threshold
        self.detach_reset = detach_reset
        self.set_surrogate(surrogate)

    def set_surrogate(self, name: str) -> None:
        """Swap the surrogate used in backward (e.g. an attacker's choice); forward is unchanged."""
        self.spike_fn = get_surrogate(name)
        self.surrogate = name
        self._grad_for = (self.spike_fn, surrogate_grad(name), SURROGATE_KERNEL.get(name))

    def _surrogate_grad(self) -> tuple[SurrogateGrad, KernelSpec | None]:
        """The derivative of `spike_fn` (and its kernel spec): from the table, or its own autograd
        if it has no entry there (a name added to SURROGATES alone, or a spike function assigned
        by hand; then backward runs the PyTorch path)."""
        fn, grad, spec = self._grad_for
        if fn is self.spike_fn and grad is not None:
            return grad, spec
        return autograd_surrogate_grad(self.spike_fn), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = self.timesteps
        if torch.is_grad_enabled() and x.requires_grad:
            return LIFScan.apply(x, T, self.beta, self.threshold, self.detach_reset, *self._surrogate_grad())
        xs = x.view(T, x.shape[0] // T, *x.shape[1:])  # [T, B, ...]
        return _scan(xs, self.beta, self.threshold, None)[0].view_as(x)

    def extra_repr(self) -> str:
        return (f"T={self.timesteps}, beta={self.beta:.3f}, threshold={self.threshold}, "
                f"surrogate={self.surrogate}")


def set_surrogate(model: nn.Module, name: str) -> None:
    """Use surrogate `name` in every LIF layer of `model`."""
    get_surrogate(name)  # validate once, before touching the model
    for m in model.modules():
        if isinstance(m, LIF):
            m.set_surrogate(name)
