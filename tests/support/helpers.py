"""Test helpers: tiny untrained checkpoints written without training (fast), torchrun-like
processes, and a progress bar that records what it was shown."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress

from suite.checkpoint import save_checkpoint
from suite.models import ModelConfig, ModelSpec, build_model
from suite.train import Optimisation, TrainConfig, train_data


def tiny_train_config(kind: str = "snn", dataset: str = "digits", size: int = 8, timesteps: int = 2,
                      arch: str = "resnet20", width: float = 0.25, seed: int = 0, **optim) -> TrainConfig:
    """A training run of a tiny model (ResNet-20 at width 0.25, T=2 on 8x8 digits by default);
    `optim`: Optimisation fields (epochs, batch_size, ...)."""
    model = ModelSpec(arch=arch, kind=kind, width=width, timesteps=timesteps)
    return TrainConfig(data=train_data(dataset, model, size=size, seed=seed), model=model,
                       optim=Optimisation(seed=seed, **optim))


def tiny_model_config(kind: str = "snn", **kw) -> ModelConfig:
    """The model config of `tiny_train_config(kind, **kw)`: the model fitted to its data."""
    return tiny_train_config(kind, **kw).model_config


def make_checkpoint(path: Path, kind: str = "snn", dataset: str = "digits", size: int = 8,
                    timesteps: int = 2, arch: str = "resnet20", width: float = 0.25, seed: int = 0,
                    spoil=None) -> Path:
    """A checkpoint of a freshly initialised tiny model; `spoil(model)` may alter its weights."""
    config = tiny_train_config(kind, dataset, size, timesteps, arch, width, epochs=1)
    torch.manual_seed(seed)
    model = build_model(config.model_config)
    if spoil is not None:
        spoil(model)
    save_checkpoint(path, config.model_config, config.data, config.optim.to_dict(), 1,
                    [{"epoch": 1, "test_acc": 0.1}], {"model": model.state_dict()})
    return path


# `suite train` options for a tiny, fast model
FAST = ["--dataset", "digits", "--size", "8", "--width", "0.25", "--timesteps", "2", "--batch-size", "256"]


def cli(runner, *args):
    """Run the CLI in-process; return (exit code, stdout+stderr)."""
    from suite.cli import app
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output  # stdout and stderr, interleaved


def assert_one_line_error(code, output, *needles):
    """Bad input: exit 2, no traceback, one line holding every needle."""
    assert code == 2, output
    assert "Traceback" not in output
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, output
    for n in needles:
        assert n in output, output


def interrupt_after_first_epoch(epoch: int, row: dict) -> None:
    """An `on_epoch_end` that stops training (as Ctrl-C would) once epoch 1 is saved."""
    if epoch == 1:
        raise KeyboardInterrupt


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_torchrun_worker(index: int, world: int, port: int, scenario, folder: str) -> None:
    """Set the variables torchrun sets for worker `index`, then run `scenario(rank, folder)`."""
    import os

    os.environ.update(RANK=str(index), LOCAL_RANK=str(index), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    scenario(index, Path(folder))


def run_processes(scenario, folder: Path, world: int = 2, timeout: float = 240.0) -> None:
    """Run `scenario(rank, folder)` in `world` fresh processes that see torchrun's environment
    (gloo on 127.0.0.1, a free port). A failure in any of them raises here with its traceback;
    processes still running after `timeout` seconds are killed and the test fails."""
    import time

    import torch.multiprocessing as mp

    ctx = mp.start_processes(_as_torchrun_worker, args=(world, free_port(), scenario, str(folder)),
                             nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            raise TimeoutError(f"{world} processes did not finish within {timeout:.0f} s")


class RecordedBar(Progress):
    """A live Rich bar on an in-memory terminal that keeps each task's first fields and
    every info text it was given."""

    made: list["RecordedBar"] = []

    def __init__(self, enabled: bool):
        super().__init__(console=Console(file=io.StringIO(), force_terminal=True, width=200),
                         disable=not enabled)
        self.first_fields: list[dict] = []
        self.texts: list[str] = []
        RecordedBar.made.append(self)

    def add_task(self, description, **kwargs):
        self.first_fields.append({k: v for k, v in kwargs.items() if k not in ("total", "start", "completed")})
        return super().add_task(description, **kwargs)

    def update(self, task_id, **fields):
        if "info" in fields:
            self.texts.append(fields["info"])
        super().update(task_id, **fields)


def assert_tensorboard_holds_the_run(folder: Path, checkpoint: Path) -> None:
    """The TensorBoard log in `folder` holds, per epoch (the step), the checkpoint's loss,
    accuracies and learning rate, and a firing rate in [0, 1] for each LIF layer (some > 0)."""
    import pytest
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from suite.checkpoint import load_checkpoint, load_model
    from suite.models import LIF

    events = EventAccumulator(str(folder))
    events.Reload()
    metrics = load_checkpoint(checkpoint).metrics
    epochs = [row["epoch"] for row in metrics]
    for tag, key in [("loss/train", "train_loss"), ("accuracy/train", "train_acc"),
                     ("accuracy/test", "test_acc"), ("lr", "lr")]:
        logged = [(e.step, e.value) for e in events.Scalars(tag)]
        assert logged == [(row["epoch"], pytest.approx(row[key], rel=1e-6)) for row in metrics], tag
    model, _ = load_model(checkpoint)
    lifs = [name for name, m in model.named_modules() if isinstance(m, LIF)]
    rate_tags = [t for t in events.Tags()["scalars"] if t.startswith("firing_rate/")]
    assert sorted(t.removeprefix("firing_rate/") for t in rate_tags) == sorted(lifs)
    rates = [events.Scalars(tag) for tag in rate_tags]
    assert all([e.step for e in logged] == epochs and all(0 <= e.value <= 1 for e in logged) for logged in rates)
    assert any(e.value > 0 for logged in rates for e in logged)
