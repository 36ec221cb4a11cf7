"""The suite's own pre-activation ResNet-20 SNN rebuilt with spikingjelly and with snntorch, as the
reference for the adapters (issue 29): the same module names and parameters, so a twin's
state dict loads into them, and neurons that compute the suite's LIF.

- spikingjelly (multi-step, input [T, B, C, H, W]): `LIFNode(tau, decay_input=False,
  v_reset=0.0, v_threshold, surrogate_function=ATan(alpha=2), detach_reset=True)`: its charge
  v - (v - 0)/tau + x is the suite's (1 - 1/tau) u + x, its hard reset to 0 with the spike
  detached is the suite's. The frameworks differ by definition at a tie: spikingjelly spikes at
  u = threshold (H(0) = 1), the suite does not; with continuous inputs a tie has probability 0,
  and the reference tests check that none occurred.
- snntorch (the snntorch tutorials' way: the model loops over T in its forward, one step per
  call, state on the neurons): `Leaky(beta=1 - 1/tau, threshold, spike_grad=atan(alpha=2),
  reset_mechanism="zero")`: with snntorch's default reset_delay, step t first zeroes the membrane
  where step t-1 spiked (the spike detached), then charges beta m + x: the suite's LIF, H(0) = 0
  as the suite's.

BatchNorm runs on its running statistics (eval), elementwise, so per-step and merged batches
give the same numbers. Pooling is the twins' mean over height and width.
"""

from __future__ import annotations

import torch
from torch import nn

from suite.models import ModelConfig

T_DEFAULT = 2


class Norm(nn.Module):
    """The twins' `norm`: (x - mean) / std per channel, with the twins' buffer names."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.in_channels
        mean = list(cfg.mean) * c if len(cfg.mean) == 1 else list(cfg.mean)
        std = list(cfg.std) * c if len(cfg.std) == 1 else list(cfg.std)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class Pool(nn.Module):
    def forward(self, x):
        return x.mean(dim=(-2, -1), keepdim=True)


def _blocks(cfg: ModelConfig, block, neuron, conv, bn):
    widths = [max(1, round(c * cfg.spec.width)) for c in (16, 32, 64)]
    stages, cin = [], widths[0]
    for i, planes in enumerate(widths):
        blocks = []
        for j in range(3):
            blocks.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1, cfg.spec.residual, neuron, conv, bn))
            cin = planes
        stages.append(nn.Sequential(*blocks))
    return widths, stages, cin


# ----------------------------------------------------------------------------- spikingjelly
class SJBlock(nn.Module):
    def __init__(self, cin, planes, stride, residual, neuron, conv, bn):
        super().__init__()
        self.residual = residual
        self.bn1, self.act1 = bn(cin), neuron()
        self.conv1 = conv(cin, planes, 3, stride, 1, bias=False)
        self.bn2, self.act2 = bn(planes), neuron()
        self.conv2 = conv(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = conv(cin, planes, 1, stride, bias=False) if residual and (stride != 1 or cin != planes) \
            else None

    def forward(self, x):
        out = self.act1(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(self.act2(self.bn2(self.conv1(out))))
        return out + skip if self.residual else out


class SJResNet20(nn.Module):
    """x [T, B, C, H, W] in [0, 1] -> logits [T, B, classes]."""

    def __init__(self, cfg: ModelConfig, neuron):
        super().__init__()
        from spikingjelly.activation_based import layer

        conv = lambda *a, **k: layer.Conv2d(*a, **k, step_mode="m")  # noqa: E731
        bn = lambda c: layer.BatchNorm2d(c, step_mode="m")  # noqa: E731
        self.norm = Norm(cfg)
        widths, stages, cin = _blocks(cfg, SJBlock, neuron, conv, bn)
        self.conv1 = conv(cfg.in_channels, widths[0], 3, 1, 1, bias=False)
        self.layer1, self.layer2, self.layer3 = stages
        self.bn, self.act = bn(cin), neuron()
        self.pool = Pool()
        self.fc = nn.Linear(cin, cfg.num_classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(self.norm(x)))))
        return self.fc(self.pool(self.act(self.bn(x))).flatten(2))


def sj_lif(cfg: ModelConfig):
    from spikingjelly.activation_based import neuron, surrogate

    spec = cfg.spec
    return lambda: neuron.LIFNode(tau=spec.tau, decay_input=False, v_reset=0.0, v_threshold=spec.threshold,
                                  surrogate_function=surrogate.ATan(alpha=2.0), detach_reset=True, step_mode="m")


def sj_resnet20(**model_config) -> SJResNet20:
    """A factory for model files: the spikingjelly reference of the twin `model_config` describes."""
    cfg = ModelConfig.from_dict(model_config)
    return SJResNet20(cfg, sj_lif(cfg))


# ----------------------------------------------------------------------------- snntorch
class Fire(nn.Module):
    """A snntorch neuron's spikes alone (snntorch neurons return (spk, mem))."""

    def __init__(self, neuron):
        super().__init__()
        self.lif = neuron

    def forward(self, x):
        return self.lif(x)[0]


class SNNTorchResNet20(nn.Module):
    """The snntorch tutorials' way: x [B, C, H, W] (a static image), T steps of the whole network,
    state kept on the neurons between steps -> spike-rate logits [T, B, classes]."""

    def __init__(self, cfg: ModelConfig, neuron):
        super().__init__()
        conv, bn = nn.Conv2d, nn.BatchNorm2d
        self.T = cfg.spec.timesteps
        self.norm = Norm(cfg)
        widths, stages, cin = _blocks(cfg, SJBlock, lambda: Fire(neuron()), conv, bn)
        self.conv1 = conv(cfg.in_channels, widths[0], 3, 1, 1, bias=False)
        self.layer1, self.layer2, self.layer3 = stages
        self.bn, self.act = bn(cin), Fire(neuron())
        self.pool = Pool()
        self.fc = nn.Linear(cin, cfg.num_classes)

    def forward(self, x):
        x = self.norm(x)
        outs = []
        for _ in range(self.T):
            h = self.layer3(self.layer2(self.layer1(self.conv1(x))))
            outs.append(self.fc(self.pool(self.act(self.bn(h))).flatten(1)))
        return torch.stack(outs)


def snntorch_lif(cfg: ModelConfig):
    import snntorch as snn
    from snntorch import surrogate

    spec = cfg.spec
    return lambda: snn.Leaky(beta=1.0 - 1.0 / spec.tau, threshold=spec.threshold,
                             spike_grad=surrogate.atan(alpha=2.0), reset_mechanism="zero")


def snntorch_resnet20(**model_config) -> SNNTorchResNet20:
    """A factory for model files: the snntorch reference of the twin `model_config` describes."""
    cfg = ModelConfig.from_dict(model_config)
    return SNNTorchResNet20(cfg, snntorch_lif(cfg))


def twin_state(model) -> dict:
    """A twin's state dict as the references name it (the same names: the state dict itself)."""
    return model.state_dict()
