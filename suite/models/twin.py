"""What SNN and ANN twins share: activation factory, input encoding, output, structure.

A twin is one architecture built with `kind="ann"` (ReLU) or `kind="snn"` (LIF): the module
names are identical, so `layer2.1` is the same place in both. SNNs run on the merged batch
[T*B, ...]; their logits come out per time step, [T, B, classes].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from suite.errors import SuiteError
from suite.models.neurons import LIF
from suite.models.spec import ModelConfig


class Normalize(nn.Module):
    """(x - mean) / std per channel, inside the model so attacks see raw [0, 1] inputs."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], channels: int):
        super().__init__()
        mean = list(mean) * channels if len(mean) == 1 else list(mean)  # lengths checked by ModelConfig
        std = list(std) * channels if len(std) == 1 else list(std)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class GlobalAvgPool(nn.Module):
    """Mean over height and width, [N, C, H, W] -> [N, C, 1, 1]. The same as
    nn.AdaptiveAvgPool2d(1), whose CUDA backward has no deterministic implementation (so
    `torch.use_deterministic_algorithms` refuses it); a mean's backward is deterministic."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


@dataclass(frozen=True)
class Block:
    """One block of a twin, as module names: `name` is the block (its output), `layers` its conv
    and activation (LIF or ReLU) layers in the order they run, ending with the block's output
    where that is a layer of its own (a residual sum). A pattern that repeats from block to
    block repeats with period len(layers)."""

    name: str
    layers: tuple[str, ...]


def make_act(cfg: ModelConfig) -> nn.Module:
    """The activation of a twin: ReLU for the ANN, a LIF layer for the SNN."""
    spec = cfg.spec
    if spec.kind == "ann":
        return nn.ReLU(inplace=False)
    return LIF(spec.timesteps, tau=spec.tau, threshold=spec.threshold, surrogate=spec.surrogate)


class TwinNet(nn.Module):
    """Base of every twin: encodes inputs, runs `body`, shapes the output.

    Inputs are in [0, 1]: static images [B, C, H, W] (repeated over T for the SNN: direct
    encoding) or event frames [B, T, C, H, W] (the SNN uses their own time axis; the ANN
    averages them over time). Output: ANN [B, classes]; SNN [T, B, classes].
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg  # checked when built (suite.models.spec)
        self.kind = cfg.spec.kind
        self.timesteps = cfg.spec.timesteps if self.kind == "snn" else None
        self.norm = Normalize(cfg.mean, cfg.std, cfg.in_channels)

    def surrogate_words(self) -> str:
        """The training surrogate of its LIF layers (an ANN: "-")."""
        return self.cfg.spec.surrogate if self.kind == "snn" else "-"

    def body(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, classes]
        raise NotImplementedError

    def representation_layers(self) -> list[str]:
        """Default CKA layers: the stem conv, every block output, the last activation, fc."""
        raise NotImplementedError

    def blocks(self) -> list[Block]:
        """The blocks in the order they run, each with its conv and activation layers."""
        raise NotImplementedError

    def layer_sets(self) -> dict[str, list[str]]:
        """Named sets of layers (`--layers @NAME`): default (`representation_layers`), blocks
        (every block's output), conv-lif (every conv and activation layer of every block, block
        by block), snncka (the layers the released code of Li et al. 2023 hooks, `snncka_layers`)
        and all (every module with a name, as `named_modules` lists them)."""
        blocks = self.blocks()
        return {"default": self.representation_layers(), "blocks": [b.name for b in blocks],
                "conv-lif": [name for b in blocks for name in b.layers], "snncka": self.snncka_layers(),
                "all": [name for name, _ in self.named_modules() if name]}

    def snncka_layers(self) -> list[str]:
        """The layer set of the SNNCKA code (Intelligent-Computing-Lab-Yale/SNNCKA, main_cka.py
        `is_layer`): every convolution, BatchNorm, activation (LIF or ReLU) and pooling output,
        and every residual block's output (the sum), not the classifier; in the order their
        forward passes finish, as its hooks fire. Found by running the model once on a blank
        input with hooks on those modules (73 layers of its ResNet-20; 69 of this one, which
        has no stem BatchNorm and a plain 1x1 projection shortcut)."""
        sums = {b.name for b in self.blocks() if b.name in b.layers}  # blocks whose output is a sum of their own
        kinds = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, LIF, nn.AvgPool2d, nn.AdaptiveAvgPool2d, GlobalAvgPool)
        order: list[str] = []
        hooks = [m.register_forward_hook(lambda mod, i, o, name=name: order.append(name))
                 for name, m in self.named_modules() if isinstance(m, kinds) or name in sums]
        was_training = self.training
        try:
            self.eval()
            with torch.no_grad():
                self(torch.zeros(1, self.cfg.in_channels, self.cfg.input_size, self.cfg.input_size))
        finally:
            self.train(was_training)
            for h in hooks:
                h.remove()
        return list(dict.fromkeys(order))

    def block_places(self, names: list[str]) -> list[tuple[int, str] | None]:
        """For each layer name, (block index in `blocks()` order, its place in the block: its
        path below the block, "" for the block's own output); None for a layer outside every
        block (the stem, the classifier). A pattern that repeats with the blocks compares a
        layer with the same place one block on."""
        owner: dict[str, tuple[int, str]] = {}
        for i, b in enumerate(self.blocks()):
            for sub, _ in self.get_submodule(b.name).named_modules():
                owner[f"{b.name}.{sub}" if sub else b.name] = (i, sub)
        return [owner.get(name) for name in names]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] or [B, T, C, H, W] -> the batch the body runs on: [B, ...] or [T*B, ...]."""
        if x.dim() == 5:
            if self.kind == "ann":
                return x.mean(dim=1)
            if x.shape[1] != self.timesteps:
                raise SuiteError(f"input has {x.shape[1]} time bins but the SNN runs T={self.timesteps}")
            return x.transpose(0, 1).flatten(0, 1)  # [T*B, C, H, W], T-major
        if x.dim() != 4:
            raise SuiteError(f"expected input [B, C, H, W] or [B, T, C, H, W], got {list(x.shape)}")
        if self.kind == "ann":
            return x
        return x.unsqueeze(0).expand(self.timesteps, *x.shape).flatten(0, 1)  # [T*B, C, H, W]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-3] != self.cfg.in_channels:
            raise SuiteError(f"input has {x.shape[-3]} channels; the model expects {self.cfg.in_channels}")
        out = self.body(self.norm(self.encode(x)))
        if self.kind == "snn":
            return out.view(self.timesteps, -1, out.shape[-1])  # [T, B, classes]
        return out


def mean_logits(out: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
    """Time-averaged logits [B, classes]: the SNN's [T, B, classes] averaged over T (the
    usual rate readout); an ANN's [B, classes] is returned unchanged."""
    is_snn = getattr(model, "kind", None) == "snn" if model is not None else out.dim() == 3
    return out.mean(dim=0) if is_snn else out


class MeanLogits(nn.Module):
    """Wrap a twin so it returns [B, classes] logits (what torchattacks expects)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        # the wrapper's own mode is the model's: torchattacks reads `training` of what it is given
        # and, finding True, calls train() on all of it after each attack (BatchNorm then updates)
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mean_logits(self.model(x), self.model)
