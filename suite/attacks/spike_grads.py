"""What an attacker differentiates inside each LIF layer: the SNN gradient modes beyond BPTT with
a named surrogate, as stand-ins that replace a LIF layer in the attacker's private copy.

Every stand-in runs the exact LIF forward (the spikes are the model's own, bit for bit); only
backward differs. Notation per LIF layer: x_t its input current at step t, u_t the membrane
before reset, v_t = u_t - threshold, s_t = H(v_t), G_t = dL/ds_t arriving from above, lambda =
1 - 1/tau the leak (the decay factor of the references), theta the threshold, T the time steps.

bptr   (`RateLIF`; Ding et al. 2022, SNN-RAT): the rate r = mean_t s_t of an integrate-and-fire
       neuron, r ~ x_bar / theta where it fires at all (x_bar = mean_t x_t), 0 where it is silent:
       dL/dx_t = 1[r > 0] / (theta T) * sum_t' G_t'.
rga    (`RGALIF`; Bu, Ding, Hao, Yu, "Rate Gradient Approximation Attack Threats Deep Spiking
       Neural Networks", CVPR 2023; code putshua/SNN_attack_RGA, models/layers.py `RateBp`): the
       spike train's gradient replaced by that of a piecewise-linear rate model of the LIF neuron
       at the time-averaged current x_bar, the same at every step, no path through time:
           dL/dx_t = G_t * r'(x_bar),
           r'(x) = gamma                                 for 0 <= x <= (1 - lambda) theta
                   (1 - gamma theta (1 - lambda)) / ((lambda + ext) theta)
                                                         for (1 - lambda) theta < x <= (1 + ext) theta
                   0                                     elsewhere,
       gamma = 0.2 (slope below threshold) and ext = 1 (rate 1 reached at x = 2 theta) as in the
       reference; it hard-codes theta = 1, and the form with theta is the port of the ASSG code
       (craree/..., my_node.py `RateBpLIF`), which is the reference's for theta = 1.
hart   (`HARTLIF`; Hao, Bu, Shi, Huang, Yu, Huang, "Threaten Spiking Neural Networks through
       Combining Rate and Temporal Information", ICLR 2024; code hzc1208/HART_Attack,
       models/layers.py `LIFSpike` mode "avg" and `GradAvg`): the membrane recurrence detached
       at every step (no temporal path), each spike's surrogate the triangle of width gamma,
       g_gamma(v) = max(0, gamma - |v|) / gamma^2, and the input gradient averaged over time and
       copied to every step (the rate part; which steps sat near threshold is the temporal part):
           dL/dx_t = (1/T) sum_t' G_t' g_gamma(v_t').
       gamma is the retention parameter (default 1.0, the reference's `self.gamma`; it searches
       0.10..2.45 for the strongest value): a wide triangle weighs all steps alike (rate-like), a
       narrow one keeps only the steps near threshold.
pdsg   (`pdsg_surrogate`; Lun et al., "Towards Effective and Sparse Adversarial Attack on Spiking
       Neural Networks via Breaking Invisible Surrogate Gradients", CVPR 2025; code
       ryime/PDSG-SDA, utils/attack.py `PDSG`): BPTT through the membrane with a Gaussian
       surrogate whose width follows the membrane potential's spread:
           f'(v_t) = exp(-(v_t - sigma/2)^2 / (2 sigma^2)) / (sqrt(2 pi) sigma),
       sigma (per time step t and channel c) = the unbiased standard deviation of u over steps
       0..t, the whole batch and the spatial positions of channel c (1 where that is 0 or not
       finite); centred at theta + sigma/2 as in the reference. sigma depends on the batch.
assg   (`ASSG`; Wang, Zhao, Chen, Zhang, Zeng, "Towards Reliable Evaluation of Adversarial
       Robustness for Spiking Neural Networks", arXiv 2512.22522; code craree/Towards-Reliable-
       Evaluation-of-Adversarial-Robustness-for-Spiking-Neural-Networks, my_node.py `ASSGrad`):
       BPTT with the atan surrogate f'(v) = alpha/2 / (1 + (pi alpha v / 2)^2), its sharpness
       per element (sample, neuron, step) adapted to running statistics of |v| over the attack's
       iterations (each gradient evaluation updates them):
           M <- 0.9 M + 0.1 |v|,  D <- 0.9 D + 0.1 | |v| - M |   (M = 1, D = 0 at the start)
           alpha = a / (M + 1.5 D + 1e-4),  a = 2 tan(pi A) / pi,  A = 0.425 by default,
       the reference's beta_1 = beta_2 = 0.9, relax = 1.5 and A (`attack.py` ASSG_SAPGD
       defaults). The statistics restart with every attacked batch (`reset_attack_state`).

The attacker-only surrogate shapes of the surrogate ensemble (Özdenizci and Legenstein,
"Adversarially Robust Spiking Neural Networks Through Conversion", TMLR 2024; code
IGITUGraz/RobustSNNConversion, models/layers.py), each with a width gamma: `pcw:G` the triangle
max(0, G - |v|) / G^2, `exp:G` exp(-G |v|), `rect:G` 1[|v| < G/2] / G. They run BPTT like bptt.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import torch
from torch import Tensor, nn

from torch.autograd.function import once_differentiable

from suite import defaults as D
from suite.errors import SuiteError
from suite.models import LIF, lif_kernel
from suite.models.neurons import SURROGATE_KERNEL, SurrogateGrad, _bptt_detached_reset, _scan, surrogate_grad

RGA_GAMMA = 0.2  # RGA: slope of the rate model below threshold (reference `gamma = 0.2`)
RGA_EXT = 1.0  # RGA: the rate reaches 1 at x = (1 + ext) theta (reference `ext = 1`)
HART_GAMMA = D.HART_GAMMA  # HART: the triangle's width, the retention parameter (reference default)
ASSG_A = D.ASSG_SHARPNESS  # ASSG: A, the surrogate mass within +-E|v| is 2A (reference default)
ASSG_BETA_M = 0.9  # ASSG: decay of the running mean of |v| (reference beta_1)
ASSG_BETA_D = 0.9  # ASSG: decay of the running mean deviation (reference beta_2)
ASSG_RELAX = 1.5  # ASSG: weight of the deviation in the scale (reference relax)
ASSG_EPS = 1e-4  # ASSG: keeps alpha finite where M and D vanish (reference value)
SHAPES = ("pcw", "exp", "rect")
_SHAPE = re.compile(r"^(pcw|exp|rect):(.+)$")


def rga_slope(x_bar: Tensor, leak: float, threshold: float) -> Tensor:
    """r'(x_bar) of RGA's rate model (module docstring), elementwise."""
    low = (1.0 - leak) * threshold
    high = (1.0 + RGA_EXT) * threshold
    steep = (1.0 - RGA_GAMMA * threshold * (1.0 - leak)) / ((leak + RGA_EXT) * threshold)
    below = ((x_bar >= 0) & (x_bar <= low)).to(x_bar.dtype) * RGA_GAMMA
    above = ((x_bar > low) & (x_bar <= high)).to(x_bar.dtype) * steep
    return below + above


class _SpikesWithGrad(torch.autograd.Function):
    """Spikes `s` forward; backward `grad(G)` to x: the input current (a mode's rule), or v for a
    foreign neuron's spike function (suite.attacks.foreign_grads)."""

    @staticmethod
    def forward(ctx, x, s, grad):
        ctx.grad = grad
        return s

    @staticmethod
    def backward(ctx, G):
        return ctx.grad(G), None, None


class _ExactLIF(nn.Module):
    """A stand-in that runs the LIF's exact forward and gives its input a mode's own gradient."""

    def __init__(self, lif: LIF):
        super().__init__()
        self.lif = lif

    def forward(self, x: Tensor) -> Tensor:  # x: [T*B, ...], T-major
        T = self.lif.timesteps
        xs = x.detach().reshape(T, -1, *x.shape[1:])  # [T, B, ...]
        with torch.no_grad():
            spikes, v = _scan(xs, self.lif.beta, self.lif.threshold, "v")
        if not (torch.is_grad_enabled() and x.requires_grad):
            return spikes.reshape(x.shape)
        rule = self.input_grad(xs, v)
        return _SpikesWithGrad.apply(x, spikes.reshape(x.shape),
                                     lambda G: rule(G.reshape(xs.shape)).reshape(x.shape))

    def input_grad(self, xs: Tensor, v: Tensor):
        raise NotImplementedError


InputGrad = Callable[[Tensor], Tensor]  # G = dL/ds [T, B, ...] -> dL/dx [T, B, ...]


def bptr_grad(spikes: Tensor, threshold: float) -> InputGrad:
    """bptr: dL/dx_t = 1[r > 0] / (theta T) * sum_t' G_t' (module docstring); spikes [T, B, ...]."""
    T = spikes.shape[0]
    fires = (spikes.sum(0, keepdim=True) > 0).to(spikes.dtype)  # 1[r > 0], [1, B, ...]
    scale = fires / (threshold * T)
    return lambda G: (G.sum(0, keepdim=True) * scale).expand_as(G)


def rga_grad(xs: Tensor, leak: float, threshold: float, input_scale: float = 1.0) -> InputGrad:
    """rga: dL/dx_t = G_t r'(x_bar) (module docstring), xs [T, B, ...]. A neuron that charges by
    `input_scale` x_t (spikingjelly's decay_input: x_t / tau) has the current input_scale x_t,
    so its slope is input_scale r'(input_scale x_bar)."""
    slope = rga_slope(input_scale * xs.mean(0, keepdim=True), leak, threshold)  # [1, B, ...]
    if input_scale != 1.0:
        slope = slope * input_scale
    return lambda G: G * slope


def hart_grad(v: Tensor, gamma: float = HART_GAMMA) -> InputGrad:
    """hart: dL/dx_t = mean_t' G_t' g_gamma(v_t') at every t (module docstring), v [T, B, ...]."""
    g = (gamma - v.abs()).clamp_(min=0) / gamma ** 2  # [T, B, ...]
    return lambda G: (G * g).mean(0, keepdim=True).expand_as(G)


class RateLIF(_ExactLIF):
    """bptr on a LIF layer (`bptr_grad`)."""

    def input_grad(self, xs: Tensor, v: Tensor):
        return bptr_grad((v > 0).to(xs.dtype), self.lif.threshold)


class RGALIF(_ExactLIF):
    """rga on a LIF layer (`rga_grad`)."""

    def input_grad(self, xs: Tensor, v: Tensor):
        return rga_grad(xs, self.lif.beta, self.lif.threshold)


class HARTLIF(_ExactLIF):
    """hart on a LIF layer (`hart_grad`)."""

    def __init__(self, lif: LIF, gamma: float = HART_GAMMA):
        super().__init__(lif)
        self.gamma = gamma

    def input_grad(self, xs: Tensor, v: Tensor):
        return hart_grad(v, self.gamma)


class _SurrogateScan(torch.autograd.Function):
    """The LIF recurrence over T (detached reset) with an attacker's surrogate derivative `grad`
    that sees every step's v at once. Backward is BPTT, g_t = f'(v_t) G_t + beta (1 - s_t) g_{t+1}:
    first H = f'(v) G for all steps (`grad`), then the recurrence, which is the straight-through
    surrogate's BPTT of H (f' = 1): the fused C kernel runs it on the CPU (suite.models.lif_kernel),
    the PyTorch ops elsewhere."""

    @staticmethod
    def forward(ctx, x, timesteps: int, beta: float, threshold: float, grad: SurrogateGrad):
        xs = x.view(timesteps, x.shape[0] // timesteps, *x.shape[1:])  # [T, B, ...]
        spikes, v = _scan(xs, beta, threshold, "v")
        ctx.save_for_backward(v)
        ctx.beta, ctx.threshold, ctx.grad = beta, threshold, grad
        return spikes.view_as(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, G):
        (v,) = ctx.saved_tensors
        H = torch.empty_like(v)
        ctx.grad(v, G.contiguous().view(v.shape), H, torch.empty_like(v))
        if lif_kernel.usable(v, H):
            g = lif_kernel.backward(v, H, ctx.beta, ctx.threshold, True, SURROGATE_KERNEL["ste"])
        else:
            g = _bptt_detached_reset(v, H, ctx.beta, surrogate_grad("ste"))
        return g.view(G.shape), None, None, None, None


class SurrogateLIF(nn.Module):
    """BPTT through a LIF layer (the model's own recurrence, detached reset) with an attacker's
    surrogate derivative `grad(v, G, out, buf)`, which receives every step's v at once."""

    def __init__(self, lif: LIF, grad: SurrogateGrad):
        super().__init__()
        if not lif.detach_reset:
            raise SuiteError("the attacker's surrogates need LIF layers with a detached reset")
        self.lif, self.grad = lif, grad

    def forward(self, x: Tensor) -> Tensor:
        lif = self.lif
        if torch.is_grad_enabled() and x.requires_grad:
            return _SurrogateScan.apply(x, lif.timesteps, lif.beta, lif.threshold, self.grad)
        return lif(x)


def pdsg_sigma(v: Tensor) -> Tensor:
    """PDSG's width per step and channel: sigma_t[c] = std of v over steps 0..t, the batch and the
    positions of channel c (unbiased; 1 where 0 or not finite, and for a single value, set without
    computing its undefined std). v [T, B, C, ...] -> [T, 1, C, 1...], in v's dtype."""
    T, C = v.shape[0], v.shape[2]
    per_channel = v.transpose(1, 2).reshape(T, C, -1)  # [T, C, B * positions]
    one = torch.ones(C, dtype=v.dtype, device=v.device)  # a single value has no spread
    sigma = torch.stack([per_channel[: t + 1].transpose(0, 1).reshape(C, -1).std(dim=1)
                         if (t + 1) * per_channel.shape[2] > 1 else one for t in range(T)])
    sigma = torch.where(torch.isfinite(sigma) & (sigma > 0), sigma, torch.ones_like(sigma))
    return sigma.reshape(T, 1, C, *([1] * (v.dim() - 3)))


def pdsg_density(v: Tensor, sigma: Tensor) -> Tensor:
    """PDSG's f'(v): the Gaussian of width sigma centred at sigma / 2 (module docstring)."""
    return torch.exp(-((v - sigma / 2) ** 2) / (2 * sigma ** 2)) / (math.sqrt(2 * math.pi) * sigma)


def pdsg_surrogate(v: Tensor, G: Tensor, out: Tensor, buf: Tensor) -> None:
    """out = f'(v) G with PDSG's width per step and channel, v and G [T, B, C, ...]."""
    out.copy_(G * pdsg_density(v, pdsg_sigma(v)))


class ASSG:
    """assg's adaptive atan surrogate with its running statistics (module docstring); one per LIF
    layer. `reset()` forgets the statistics (a new batch); they also restart when the batch's
    shape changes."""

    def __init__(self, sharpness: float = ASSG_A):
        self.a = 2 * math.tan(math.pi * sharpness) / math.pi
        self.reset()

    def reset(self) -> None:
        self.M: Tensor | None = None
        self.D: Tensor | None = None

    def __call__(self, v: Tensor, G: Tensor, out: Tensor, buf: Tensor) -> None:
        """out = f'(v) G, after updating the statistics from v; in place on `out` and `buf`
        (v, G [T, B, ...]): the surrogate runs on every LIF layer at every attack iteration."""
        if self.M is None or self.M.shape != v.shape:
            self.M, self.D = torch.ones_like(v), torch.zeros_like(v)
        torch.abs(v, out=buf)  # |v|
        self.M.mul_(ASSG_BETA_M).add_(buf, alpha=1 - ASSG_BETA_M)
        buf.sub_(self.M).abs_()  # | |v| - M |, with the updated M
        self.D.mul_(ASSG_BETA_D).add_(buf, alpha=1 - ASSG_BETA_D)
        torch.add(self.M, self.D, alpha=ASSG_RELAX, out=buf).add_(ASSG_EPS).reciprocal_().mul_(self.a)  # alpha
        torch.mul(buf, v, out=out).mul_(math.pi / 2).square_().add_(1)  # 1 + (pi alpha v / 2)^2
        buf.div_(out).mul_(0.5)  # alpha / 2 / (1 + ...)
        torch.mul(G, buf, out=out)


def parse_shape(name: str) -> tuple[str, float] | None:
    """("pcw", 0.5) for "pcw:0.5"; None for a name that is no attacker shape. The width must be
    a finite number > 0 (SuiteError)."""
    m = _SHAPE.match(name)
    if m is None:
        return None
    try:
        width = float(m.group(2))
    except ValueError:
        width = math.nan
    if not (math.isfinite(width) and width > 0):
        raise SuiteError(f"surrogate {name!r}: the width after ':' must be a number > 0")
    return m.group(1), width


def shape_surrogate(name: str) -> SurrogateGrad:
    """The derivative of an attacker shape `pcw:G`, `exp:G` or `rect:G` (module docstring)."""
    shape, w = parse_shape(name)

    def grad(v: Tensor, G: Tensor, out: Tensor, buf: Tensor) -> None:
        if shape == "pcw":
            f = (w - v.abs()).clamp(min=0) / w ** 2
        elif shape == "exp":
            f = torch.exp(-w * v.abs())
        else:
            f = (v.abs() < w / 2).to(v.dtype) / w
        out.copy_(G * f)
    return grad
