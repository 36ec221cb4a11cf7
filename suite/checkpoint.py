"""Checkpoints: weights plus the full model, data and training config; atomic save, safe load.

A checkpoint is a plain dict of tensors and JSON-like values, saved with `torch.save` to a
temporary file and renamed, and loaded with `weights_only=True`: loading never runs code.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from suite.data.registry import DataSpec
from suite.errors import SuiteError
from suite.models import ModelConfig, TwinNet, build_model
from suite.files import atomic_path

FORMAT = "suite-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: configs, progress, metrics, and the raw state dicts."""

    path: Path
    model_config: ModelConfig
    data_spec: DataSpec
    train_config: dict[str, Any]
    epoch: int
    metrics: list[dict[str, float]]
    state: dict[str, Any]

    def data_spec_for(self, dataset: str | None = None) -> DataSpec:
        """The checkpoint's own data, or `dataset` shaped to fit its model (size, channels, T)."""
        from suite.data import get_dataset_info, resolve_spec

        own = self.data_spec
        if dataset is None or dataset == own.name:
            return own
        kind = get_dataset_info(dataset).kind
        cfg = self.model_config
        return resolve_spec(DataSpec(dataset, size=cfg.input_size,
                                     channels=cfg.in_channels if kind == "static" else None,
                                     timesteps=cfg.timesteps if kind == "event" else None, seed=own.seed))

    def build(self, device: torch.device | str = "cpu") -> TwinNet:
        """The model with this checkpoint's weights, in eval mode on `device`."""
        model = build_model(self.model_config)
        try:
            model.load_state_dict(self.state["model"])
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise SuiteError(f"{self.path}: weights do not fit {self.model_config.arch}: {first}") from None
        return model.to(device).eval()


def save_checkpoint(path: str | Path, model_config: ModelConfig, data_spec: DataSpec,
                    train_config: dict[str, Any], epoch: int, metrics: list[dict[str, float]],
                    state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temporary file + rename)."""
    payload = {
        "format": FORMAT, "version": VERSION, "model_config": model_config.to_dict(),
        "data_spec": data_spec.to_dict(), "train_config": dict(train_config), "epoch": int(epoch),
        "metrics": list(metrics), "state": state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; every failure is one SuiteError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"checkpoint not found: {p}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SuiteError(f"{p} is not a readable suite checkpoint ({reason[:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SuiteError(f"{p} is not a suite checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise SuiteError(f"{p} has checkpoint version {payload.get('version')}; this suite reads {VERSION}")
    try:
        return Checkpoint(
            path=p, model_config=ModelConfig.from_dict(payload["model_config"]),
            data_spec=DataSpec.from_dict(payload["data_spec"]), train_config=payload["train_config"],
            epoch=int(payload["epoch"]), metrics=list(payload["metrics"]), state=payload["state"],
        )
    except (KeyError, TypeError) as exc:
        raise SuiteError(f"{p} is missing checkpoint field {exc}") from None


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[TwinNet, Checkpoint]:
    """Model in eval mode with the checkpoint's weights, and the checkpoint itself."""
    ckpt = load_checkpoint(path)
    return ckpt.build(device), ckpt
