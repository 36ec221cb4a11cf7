"""VGG-11 and VGG-16 for small inputs as twins: conv-BN-act stages with average pooling.

Average pooling (not max) keeps the SNN twin's pooled spikes a rate and the twins identical.
A pooling step is skipped once the feature map is 1x1, so 16x16 digits work too.
"""

from __future__ import annotations

from torch import nn

from suite.models.archs import CONFIGS
from suite.models.spec import ModelConfig
from suite.models.twin import Block, GlobalAvgPool, TwinNet, make_act


class ConvBNAct(nn.Module):
    """conv -> bn -> act, one VGG layer."""

    def __init__(self, cfg: ModelConfig, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = make_act(cfg)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class VGG(TwinNet):
    """features (ConvBNAct / AvgPool2d) -> global pool -> fc."""

    def __init__(self, cfg: ModelConfig, depth: int):
        super().__init__(cfg)
        layers, cin, side = [], cfg.in_channels, cfg.input_size
        for item in CONFIGS[depth]:
            if item == "P":
                if side > 1:
                    layers.append(nn.AvgPool2d(2))
                    side //= 2
            else:
                cout = max(1, round(item * cfg.spec.width))
                layers.append(ConvBNAct(cfg, cin, cout))
                cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = GlobalAvgPool()
        self.fc = nn.Linear(cin, cfg.num_classes)

    def representation_layers(self) -> list[str]:
        return [*(b.name for b in self.blocks()), "fc"]

    def blocks(self) -> list[Block]:
        """Every conv-BN-act layer; its output is its activation's."""
        return [Block(f"features.{i}", (f"features.{i}.conv", f"features.{i}.act"))
                for i, m in enumerate(self.features) if isinstance(m, ConvBNAct)]

    def body(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))
