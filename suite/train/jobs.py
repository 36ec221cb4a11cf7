"""`suite train` as a library call: train one model and write its checkpoint."""

from __future__ import annotations

from pathlib import Path

from suite import distributed
from suite.device import select_device
from suite.files import ensure_out_dir
from suite.train.loop import TrainResult, train
from suite.train.settings import TrainConfig
from suite.values import check_file_name
from suite.where import Where

SUFFIX = ".pt"


def checkpoint_path(config: TrainConfig, out: Path, name: str | None = None) -> Path:
    """OUT/NAME.pt, NAME defaulting to `config.run_name()` (`--name r.pt` means r.pt)."""
    check_file_name(name)
    stem = name or config.run_name()
    return Path(out) / (stem if stem.endswith(SUFFIX) else stem + SUFFIX)


def train_one(config: TrainConfig, where: Where, *, name: str | None = None, resume: bool = False,
              tensorboard: Path | None = None) -> TrainResult:
    """Train the model of `config`; write WHERE.out/NAME.pt (`checkpoint_path`). Under torchrun
    every process calls this and they train one model together (suite.train.loop);
    `tensorboard`: a folder for TensorBoard logs."""
    path = checkpoint_path(config, where.out, name)
    dev = select_device(where.device)
    ensure_out_dir(where.out)
    with distributed.session(dev):
        return train(config, path, data_root=where.data_root, device=dev, resume=resume,
                     show_progress=where.show_progress, tensorboard=tensorboard)
