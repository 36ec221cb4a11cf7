"""Pre-activation ResNets for CIFAR-size inputs (20/38/56/110 basic, 164 bottleneck) as twins.

Depth d = 6n + 2 (basic blocks) or 9n + 2 (bottleneck), three stages of n blocks with
16w, 32w, 64w channels (w: width multiplier). `residual=False` removes every shortcut,
giving the plain stacks of the paper's residual study.
"""

from __future__ import annotations

from torch import nn

from suite.models.archs import DEPTHS
from suite.models.spec import ModelConfig
from suite.models.twin import Block, GlobalAvgPool, TwinNet, make_act


class PreActBlock(nn.Module):
    """bn1-act1-conv1-bn2-act2-conv2 (+ shortcut): a basic pre-activation block."""

    expansion = 1
    layers = ("act1", "conv1", "act2", "conv2")  # conv and activation layers, in the order they run

    def __init__(self, cfg: ModelConfig, cin: int, planes: int, stride: int):
        super().__init__()
        self.residual = cfg.spec.residual
        self.bn1, self.act1 = nn.BatchNorm2d(cin), make_act(cfg)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(planes), make_act(cfg)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = _shortcut(cfg, cin, planes, stride)

    def forward(self, x):
        out = self.act1(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(self.act2(self.bn2(self.conv1(out))))
        return out + skip if self.residual else out


class PreActBottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), each pre-activated: the ResNet-164 block."""

    expansion = 4
    layers = ("act1", "conv1", "act2", "conv2", "act3", "conv3")

    def __init__(self, cfg: ModelConfig, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.residual = cfg.spec.residual
        self.bn1, self.act1 = nn.BatchNorm2d(cin), make_act(cfg)
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(planes), make_act(cfg)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3, self.act3 = nn.BatchNorm2d(planes), make_act(cfg)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.shortcut = _shortcut(cfg, cin, cout, stride)

    def forward(self, x):
        out = self.act1(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(self.act2(self.bn2(self.conv1(out))))
        out = self.conv3(self.act3(self.bn3(out)))
        return out + skip if self.residual else out


def _shortcut(cfg: ModelConfig, cin: int, cout: int, stride: int) -> nn.Module | None:
    """1x1 projection where the shape changes; None means identity (or no shortcut at all)."""
    if cfg.spec.residual and (stride != 1 or cin != cout):
        return nn.Conv2d(cin, cout, 1, stride, bias=False)
    return None


class PreActResNet(TwinNet):
    """conv1 -> layer1..3 -> bn -> act -> pool -> fc; module names shared by both twins."""

    def __init__(self, cfg: ModelConfig, depth: int):
        super().__init__(cfg)
        block_type, n = DEPTHS[depth]
        block = PreActBlock if block_type == "basic" else PreActBottleneck
        widths = [max(1, round(c * cfg.spec.width)) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(cfg.in_channels, widths[0], 3, 1, 1, bias=False)
        cin, stages = widths[0], []
        for i, planes in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(block(cfg, cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn, self.act = nn.BatchNorm2d(cin), make_act(cfg)
        self.pool = GlobalAvgPool()
        self.fc = nn.Linear(cin, cfg.num_classes)

    def representation_layers(self) -> list[str]:
        return ["conv1", *(b.name for b in self.blocks()), "act", "fc"]

    def blocks(self) -> list[Block]:
        """Every residual block of layer1..3; its layers end with the block output (the sum)."""
        return [Block(f"{stage}.{j}", (*(f"{stage}.{j}.{p}" for p in block.layers), f"{stage}.{j}"))
                for stage in ("layer1", "layer2", "layer3") for j, block in enumerate(getattr(self, stage))]

    def body(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(self.pool(self.act(self.bn(x))).flatten(1))
