"""Checkpoints: weights plus the full model, data and training config; atomic save, safe load.

A checkpoint is a plain dict of tensors and JSON-like values, saved with `torch.save` to a
temporary file and renamed, and loaded with `weights_only=True`: loading never runs code.
Beside the required fields it holds `provenance` (suite.results.provenance, passed in by the
trainer: command, versions, git commit, device, date of the run that wrote it); checkpoints
written before it existed load with an empty one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from suite.data.registry import DataSpec
from suite.errors import SuiteError
from suite.models import ModelConfig, TwinNet, build_model
from suite.files import atomic_path
from suite.weights import read_weights_only

FORMAT = "suite-checkpoint"
VERSION = 1
# The fields of a checkpoint file and their types (written by `save_checkpoint`).
FIELDS = {"model_config": dict, "data_spec": dict, "train_config": dict, "epoch": int, "metrics": list,
          "state": dict}


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
    provenance: dict[str, Any] = field(default_factory=dict)

    def data_spec_for(self, dataset: str | None = None) -> DataSpec:
        """The checkpoint's own data, or `dataset` shaped to fit its model (size, channels, T)."""
        from suite.data import get_dataset_info

        own = self.data_spec
        if dataset is None or dataset == own.name:
            return own
        kind = get_dataset_info(dataset).kind
        cfg = self.model_config
        return DataSpec(dataset, size=cfg.input_size, channels=cfg.in_channels if kind == "static" else None,
                        timesteps=cfg.spec.timesteps if kind == "event" else None, seed=own.seed)

    def build(self, device: torch.device | str = "cpu") -> TwinNet:
        """The model with this checkpoint's weights, in eval mode on `device`."""
        model = build_model(self.model_config)  # checked when read
        try:
            model.load_state_dict(self.state["model"])
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise SuiteError(f"{self.path}: weights do not fit {self.model_config.spec.arch}: {first}") from None
        return model.to(device).eval()


def save_checkpoint(path: str | Path, model_config: ModelConfig, data_spec: DataSpec,
                    train_config: dict[str, Any], epoch: int, metrics: list[dict[str, float]],
                    state: dict[str, Any], provenance: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file + rename); `provenance` as built by
    suite.results.provenance.provenance for the run."""
    payload = {
        "format": FORMAT, "version": VERSION, "model_config": model_config.to_dict(),
        "data_spec": data_spec.to_dict(), "train_config": dict(train_config), "epoch": int(epoch),
        "metrics": list(metrics), "state": state, "provenance": dict(provenance or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; every failure is one SuiteError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"checkpoint not found: {p}")
    payload = read_weights_only(p)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SuiteError(f"{p} is not a suite checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise SuiteError(f"{p} has checkpoint version {payload.get('version')}; this suite reads {VERSION}")
    missing = [key for key in FIELDS if key not in payload]
    if missing:
        raise SuiteError(f"{p} is missing checkpoint field(s) {', '.join(missing)}")
    for key, kind in FIELDS.items():
        if not isinstance(payload[key], kind) or isinstance(payload[key], bool):
            raise SuiteError(f"{p}: checkpoint field {key} is a {type(payload[key]).__name__}, "
                             f"not a {kind.__name__}")
    weights = payload["state"].get("model")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise SuiteError(f"{p}: checkpoint field state has no model weights (a dict of tensors)")
    provenance = payload.get("provenance", {})
    if not isinstance(provenance, dict):
        raise SuiteError(f"{p}: checkpoint field provenance is a {type(provenance).__name__}, not a dict")
    return Checkpoint(
        path=p, model_config=_config(ModelConfig, payload["model_config"], p),
        data_spec=_config(DataSpec, payload["data_spec"], p), train_config=payload["train_config"],
        epoch=payload["epoch"], metrics=payload["metrics"], state=payload["state"], provenance=provenance,
    )


def _config(cls: type, values: dict, p: Path):
    """`cls.from_dict(values)`: the stored values checked as the options they were (a config
    checks its values when built); every problem names the file."""
    try:
        return cls.from_dict(values)
    except SuiteError as exc:
        raise SuiteError(f"{p}: the stored {cls.__name__} is not valid: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"{p}: the stored {cls.__name__} holds values of the wrong type ({exc})") from None


def load_model(path: str | Path, device: torch.device | str = "cpu"):
    """The one door to a model: from a checkpoint (.pt) or a model file (.toml, a network built
    elsewhere: suite.modelfile), in eval mode on `device`, with what was read (a Checkpoint, or
    a ModelFile that answers the same questions: model_config, data_spec, data_spec_for, path)."""
    from suite.modelfile import is_model_file, load_model_file

    if is_model_file(path):
        return load_model_file(path, device)
    ckpt = load_checkpoint(path)
    return ckpt.build(device), ckpt
