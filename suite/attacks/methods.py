"""The attack methods: what each name runs through torchattacks, and the seeded call on one batch.

torchattacks as used here: untargeted, inputs and outputs in [0, 1] (the twins normalise
inside, so `set_normalization_used` is not needed), model in eval mode during the attack
(its default `set_model_training_mode(False)`), device taken from the attacker's parameters.
FGSM: x + eps * sign(grad), clamped to [0, 1]. PGD: optional uniform start in the eps ball,
then `steps` times x + alpha * sign(grad), projected to the eps ball and [0, 1].

Determinism: before each call the torch RNG is seeded from (seed, method, eps, first index
of the batch) inside `torch.random.fork_rng`, so the same seed and batch size give the same
examples (PGD's random start included) whatever else ran before, and the caller's RNG state
is left untouched.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Callable

import torch
import torchattacks
from torch import Tensor, nn

if TYPE_CHECKING:
    from suite.attacks.config import AttackConfig

# name -> factory(model, eps, config) of a torchattacks attack
METHODS: dict[str, Callable[[nn.Module, float, "AttackConfig"], torchattacks.Attack]] = {
    "fgsm": lambda model, eps, cfg: torchattacks.FGSM(model, eps=eps),
    "pgd": lambda model, eps, cfg: torchattacks.PGD(model, eps=eps, alpha=cfg.alpha, steps=cfg.steps,
                                                    random_start=cfg.random_start),
}


def batch_seed(seed: int, method: str, eps: float, start: int) -> int:
    """The RNG seed of one torchattacks call: a stable hash (CRC-32, the same in every process,
    unlike Python's salted `hash`) of what identifies the call."""
    return zlib.crc32(f"{seed}:{method}:{eps!r}:{start}".encode())


def craft(attacker: nn.Module, method: str, x: Tensor, y: Tensor, eps: float,
          config: "AttackConfig", seed: int) -> Tensor:
    """Adversarial inputs for one batch (eps 0: a copy of x, no attack call)."""
    if eps == 0:
        return x.detach().clone()
    attack = METHODS[method](attacker, eps, config)
    devices = [x.device.index if x.device.index is not None else torch.cuda.current_device()] \
        if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return attack(x, y)
