"""Test helpers: tiny untrained checkpoints written without training (fast)."""

from __future__ import annotations

from pathlib import Path

import torch

from suite.checkpoint import save_checkpoint
from suite.data import DataSpec
from suite.models import build_model
from suite.settings import TrainConfig
from suite.train import model_config_for


def make_checkpoint(path: Path, kind: str = "snn", dataset: str = "digits", size: int = 8,
                    timesteps: int = 2, arch: str = "resnet20", width: float = 0.25, seed: int = 0,
                    spoil=None) -> Path:
    """A checkpoint of a freshly initialised tiny model; `spoil(model)` may alter its weights."""
    spec = DataSpec(dataset, size=size, timesteps=timesteps if dataset.endswith("dvs") else None)
    from suite.data import resolve_spec
    spec = resolve_spec(spec)
    cfg = model_config_for(spec, arch, kind, width=width, timesteps=timesteps)
    torch.manual_seed(seed)
    model = build_model(cfg)
    if spoil is not None:
        spoil(model)
    from dataclasses import asdict
    save_checkpoint(path, cfg, spec, asdict(TrainConfig(epochs=1)), 1, [{"epoch": 1, "test_acc": 0.1}],
                    {"model": model.state_dict()})
    return path
