"""The architectures' shape tables, which the model options are checked against (spec.py) and the
architectures are built from (resnet.py, vgg.py). Imports nothing of the package, so the spec can
name the architectures without importing them, and they can import the spec."""

from __future__ import annotations

# ResNet depth -> (block type, blocks per stage): d = 6n + 2 (basic) or 9n + 2 (bottleneck)
DEPTHS = {20: ("basic", 3), 38: ("basic", 6), 56: ("basic", 9), 110: ("basic", 18), 164: ("bottleneck", 18)}
# VGG depth -> channels per conv layer, "P" a pooling step
CONFIGS = {
    11: [64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"],
    16: [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"],
}
