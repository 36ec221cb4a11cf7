"""End-to-end jobs behind the CLI commands (train one model, the demo), as library functions."""

from __future__ import annotations

from pathlib import Path

from suite import distributed
from suite.config import select_device
from suite.data import DataSpec, get_dataset_info, resolve_spec
from suite.files import ensure_out_dir
from suite.models import ModelConfig
from suite.settings import TrainConfig, TrainSettings
from suite.train import TrainResult, model_config_for, train

SUFFIX = ".pt"


def training_plan(settings: TrainSettings) -> tuple[DataSpec, ModelConfig, TrainConfig]:
    """What `settings` trains, as a checkpoint stores it: the data spec (defaults filled in),
    the model config and the optimisation config. Two checkpoints of equal plans are the same
    run, which is how `suite experiment` recognises one it can reuse."""
    cfg = settings.train_config()
    is_event = get_dataset_info(settings.dataset).kind == "event"
    spec = resolve_spec(DataSpec(settings.dataset, size=settings.size,
                                 timesteps=settings.timesteps if is_event else None, seed=settings.seed))
    model_cfg = model_config_for(spec, settings.arch, settings.kind, width=settings.width,
                                 residual=settings.residual, tau=settings.tau, threshold=settings.threshold,
                                 surrogate=settings.surrogate, timesteps=settings.timesteps)
    return spec, model_cfg, cfg


def train_one(settings: TrainSettings, *, device: str = "auto", data_root: Path = Path("datasets"),
              out: Path = Path("runs"), name: str | None = None, resume: bool = False,
              tensorboard: Path | None = None, show_progress: bool = True) -> TrainResult:
    """Check the settings, then train one model; write OUT/NAME.pt (NAME: `settings.run_name()`).
    Under torchrun every process calls this and they train one model together (suite.train);
    `tensorboard`: a folder for TensorBoard logs."""
    spec, model_cfg, cfg = training_plan(settings)
    dev = select_device(device)
    ensure_out_dir(out)
    stem = name or settings.run_name()
    path = Path(out) / (stem if stem.endswith(SUFFIX) else stem + SUFFIX)  # `--name r.pt` means r.pt
    with distributed.session(dev):
        return train(model_cfg, spec, cfg, path, data_root=data_root, device=dev, resume=resume,
                     show_progress=show_progress, tensorboard=tensorboard)
