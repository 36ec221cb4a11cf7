"""Model registry: SNN/ANN twin architectures, built by name through `build_model`; networks
built elsewhere (spikingjelly, snntorch, plain PyTorch) enter through `adapt`."""

from __future__ import annotations

import fnmatch
import re
from functools import partial
from typing import Callable

from suite.models.adapter import ExternalModel, adapt
from suite.models.neurons import LIF, SURROGATES, get_surrogate, set_surrogate
from suite.models.archs import CONFIGS, DEPTHS
from suite.models.resnet import PreActResNet
from suite.models.spec import ModelConfig, ModelSpec
from suite.models.twin import Block, MeanLogits, TwinNet, mean_logits
from suite.models.vgg import VGG

ARCHS: dict[str, Callable[[ModelConfig], TwinNet]] = {
    **{f"resnet{d}": partial(PreActResNet, depth=d) for d in DEPTHS},
    **{f"vgg{d}": partial(VGG, depth=d) for d in CONFIGS},
}


def _natural(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def list_archs(pattern: str = "*") -> list[str]:
    """Architecture names matching a shell pattern, in natural order (resnet20 before resnet110)."""
    return sorted((a for a in ARCHS if fnmatch.fnmatch(a, pattern)), key=_natural)


def build_model(cfg: ModelConfig) -> TwinNet:
    """The only door to a model: the twin `cfg.spec.kind` of `cfg.spec.arch` (a ModelConfig is
    valid once built, so nothing is checked again here)."""
    return ARCHS[cfg.spec.arch](cfg)


__all__ = ["ARCHS", "LIF", "SURROGATES", "Block", "ExternalModel", "MeanLogits", "ModelConfig", "ModelSpec",
           "TwinNet", "adapt", "build_model", "get_surrogate", "list_archs", "mean_logits", "set_surrogate"]
