"""Training and CKA settings and their defaults, in one place: what `suite train` takes, what the
demo sets and what the library's `train_one` receives (`TrainSettings`), and the optimisation
part that checkpoints store (`TrainConfig`).

Plain values with no torch import, so the CLI reads its defaults from here and `--help` and
shell completion stay fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from suite.errors import SuiteError


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; stored in checkpoints. Checked when built."""

    epochs: int = 10
    batch_size: int = 64  # global: split evenly over the processes of a torchrun
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    tet: bool = False  # Temporal Efficient Training loss (Deng et al. 2022) for SNNs
    amp: bool = True  # mixed precision, on CUDA only: bfloat16 where supported, else float16
    workers: int = 0
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)
    deterministic: bool = False  # deterministic kernels (exact resume on CUDA; slower there)

    def __post_init__(self) -> None:
        """The one check of the optimisation settings: a TrainConfig is valid once built."""
        if self.epochs < 1:
            raise SuiteError(f"--epochs must be a positive number, got {self.epochs}")
        if self.batch_size < 1:
            raise SuiteError(f"--batch-size must be positive, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SuiteError(f"--lr must be positive, got {self.lr}")


_OPTIM = TrainConfig()


@dataclass(frozen=True)
class TrainSettings:
    """One training run: the data, the model (defaults of `ModelConfig` too) and the
    optimisation (defaults from `TrainConfig`)."""

    dataset: str = "digits"
    arch: str = "resnet20"
    kind: str = "snn"  # "snn" (LIF neurons) or "ann" (its ReLU twin)
    timesteps: int = 4  # SNN time steps; event data gets this many frame bins
    width: float = 1.0  # channel width multiplier
    residual: bool = True
    surrogate: str = "atan"
    tau: float = 2.0  # LIF membrane time constant: leak 1 - 1/tau
    threshold: float = 1.0  # LIF firing threshold
    size: int | None = None  # input side in pixels; None: the dataset's own
    epochs: int = _OPTIM.epochs
    batch_size: int = _OPTIM.batch_size
    lr: float = _OPTIM.lr
    tet: bool = _OPTIM.tet
    workers: int = _OPTIM.workers
    seed: int = _OPTIM.seed
    amp: bool = _OPTIM.amp
    sync_bn: bool = _OPTIM.sync_bn
    deterministic: bool = _OPTIM.deterministic

    def train_config(self) -> TrainConfig:
        """The optimisation settings (checked when built)."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           tet=self.tet, workers=self.workers, amp=self.amp, sync_bn=self.sync_bn,
                           deterministic=self.deterministic)

    def run_name(self) -> str:
        """Checkpoint name from the settings, e.g. digits-resnet20-snn-T4-w0.5-s0."""
        parts = [self.dataset, self.arch, self.kind]
        if self.kind == "snn":
            parts.append(f"T{self.timesteps}")
        parts += [f"w{self.width:g}"] + ([] if self.residual else ["nores"]) + [f"s{self.seed}"]
        return "-".join(parts)


TRAIN = TrainSettings()  # the defaults


# Defaults of every CKA run, CLI and library alike: a seeded subset of 512 samples, in
# minibatches of 128 (HSIC is averaged over minibatches; each costs n x n Grams per layer).
CKA_SAMPLES = 512
CKA_BATCH_SIZE = 128
