"""The `suite` command line: a thin Typer layer that parses options, calls library functions
and prints with Rich. Bad input (SuiteError) prints one red line and exits with code 2."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from suite.errors import SuiteError
from suite.progress import console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Neuromorphic data, SNN/ANN twins, adversarial attacks and CKA analysis.")
data_app = typer.Typer(no_args_is_help=True, help="List, check and download datasets.")
app.add_typer(data_app, name="data")

err_console = console.__class__(stderr=True, highlight=False)


def fail(message: str) -> None:
    """The one error helper: print one red line on stderr and exit 2."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True)
    raise typer.Exit(2)


def handles_errors(fn):
    """Turn SuiteError from library code into `fail`; Ctrl-C into a short line and exit 130."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SuiteError as exc:
            fail(str(exc).replace("[", "\\["))
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130)
    return wrapper


def command(app_: typer.Typer = app, name: str | None = None):
    """Register a CLI command with the error handling applied."""
    def register(fn):
        return app_.command(name=name)(handles_errors(fn))
    return register


# ----------------------------------------------------------------------------- shared options
DATA_ROOT = typer.Option(Path("datasets"), "--data-root", help="Folder holding datasets and frame caches.")
DEVICE = typer.Option("auto", help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N.")
SEED = typer.Option(0, help="Random seed (data split, initialisation, order).")


@command(name="train")
def train_cmd(
    dataset: str = typer.Option("digits", help="Dataset name (see `suite data list`)."),
    arch: str = typer.Option("resnet20", help="resnet20/38/56/110/164, vgg11, vgg16."),
    kind: str = typer.Option("snn", help="snn (LIF neurons) or ann (ReLU twin)."),
    timesteps: int = typer.Option(4, help="SNN time steps T (event data: the number of frame bins)."),
    width: float = typer.Option(1.0, help="Channel width multiplier."),
    no_residual: bool = typer.Option(False, "--no-residual", help="Remove residual connections."),
    surrogate: str = typer.Option("atan", help="Surrogate gradient (snntorch): atan, fast_sigmoid, sigmoid, triangular, ste, spike_rate_escape."),
    tau: float = typer.Option(2.0, help="LIF membrane time constant (leak 1 - 1/tau)."),
    threshold: float = typer.Option(1.0, help="LIF firing threshold."),
    size: Optional[int] = typer.Option(None, help="Input side in pixels (default: the dataset's)."),
    epochs: int = typer.Option(10, help="Training epochs."),
    batch_size: int = typer.Option(64, help="Batch size."),
    lr: float = typer.Option(0.1, help="Initial SGD learning rate (cosine schedule)."),
    tet: bool = typer.Option(False, "--tet", help="Use the TET loss (mean of per-step cross-entropy) for SNNs."),
    workers: int = typer.Option(0, help="DataLoader worker processes."),
    seed: int = SEED,
    device: str = DEVICE,
    data_root: Path = DATA_ROOT,
    out: Path = typer.Option(Path("runs"), help="Folder for the checkpoint."),
    name: Optional[str] = typer.Option(None, help="Checkpoint file name (default from the settings)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last epoch."),
) -> None:
    """Train an SNN or its ANN twin; writes OUT/NAME.pt after every epoch."""
    from suite import workflows

    result = workflows.train_one(
        dataset=dataset, arch=arch, kind=kind, timesteps=timesteps, width=width, residual=not no_residual,
        surrogate=surrogate, tau=tau, threshold=threshold, size=size, epochs=epochs, batch_size=batch_size,
        lr=lr, tet=tet, workers=workers, seed=seed, device=device, data_root=data_root, out=out, name=name,
        resume=resume)
    table = Table(title=f"training: {result.checkpoint.name}")
    for col in ("epoch", "train loss", "train acc", "test acc", "lr"):
        table.add_column(col, justify="right")
    for m in result.metrics:
        table.add_row(str(m["epoch"]), f"{m['train_loss']:.4f}", f"{m['train_acc']:.3f}",
                      f"{m['test_acc']:.3f}", f"{m['lr']:.4f}")
    console.print(table)
    console.print(f"checkpoint: {result.checkpoint}  ({result.seconds:.1f} s)")


@command(data_app, name="list")
def data_list(data_root: Path = DATA_ROOT) -> None:
    """Show every dataset: kind, input shape, classes, where its files go, and whether present."""
    from suite.data.manage import dataset_rows

    table = Table(title=f"datasets under {data_root}")
    for col in ("name", "kind", "input", "classes", "location", "present", "cache"):
        table.add_column(col)
    for row in dataset_rows(data_root):
        table.add_row(row["name"], row["kind"], row["shape"], str(row["classes"]), row["location"],
                      "[green]yes[/]" if row["present"] else "[red]no[/]", _size(row["cache_bytes"]))
    console.print(table)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
