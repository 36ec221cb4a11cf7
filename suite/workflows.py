"""End-to-end jobs behind the CLI commands (train one model, the demo), as library functions."""

from __future__ import annotations

from pathlib import Path

from suite.config import select_device
from suite.data import DataSpec, get_dataset_info
from suite.models import get_surrogate
from suite.files import ensure_out_dir
from suite.train import TrainConfig, TrainResult, model_config_for, train


def default_run_name(spec: DataSpec, arch: str, kind: str, timesteps: int, width: float,
                     residual: bool, seed: int) -> str:
    """Checkpoint name from the settings, e.g. digits-resnet20-snn-T4-w0.5-s0."""
    parts = [spec.name, arch, kind]
    if kind == "snn":
        parts.append(f"T{timesteps}")
    parts += [f"w{width:g}"] + ([] if residual else ["nores"]) + [f"s{seed}"]
    return "-".join(parts)


def train_one(*, dataset: str, arch: str, kind: str, timesteps: int, width: float, residual: bool,
              surrogate: str, tau: float, threshold: float, size: int | None, epochs: int,
              batch_size: int, lr: float, tet: bool, workers: int, seed: int, device: str,
              data_root: Path, out: Path, name: str | None, resume: bool,
              show_progress: bool = True) -> TrainResult:
    """Validate the options, then train one model and return its metrics and checkpoint."""
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, tet=tet, workers=workers)
    cfg.validate()
    if kind == "snn":
        get_surrogate(surrogate)
    dev = select_device(device)
    is_event = get_dataset_info(dataset).kind == "event"
    spec = DataSpec(dataset, size=size, timesteps=timesteps if is_event else None, seed=seed)
    extra = dict(width=width, residual=residual, tau=tau, threshold=threshold, surrogate=surrogate,
                 timesteps=timesteps)
    model_cfg = model_config_for(spec, arch, kind, **extra)
    ensure_out_dir(out)
    stem = name or default_run_name(spec, arch, kind, timesteps, width, residual, seed)
    path = Path(out) / (stem if stem.endswith(".pt") else f"{stem}.pt")  # `--name r.pt` means r.pt
    return train(model_cfg, spec, cfg, path, data_root=data_root, device=dev, resume=resume,
                 show_progress=show_progress)
