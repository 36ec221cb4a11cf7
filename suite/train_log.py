"""TensorBoard logs of a training run (the optional `tensorboard` extra), written by rank 0.

Per epoch: loss and accuracy (train, test), the learning rate, and each LIF layer's firing
rate over that epoch's training batches on rank 0 (`suite.models.firing`). Tags: `loss/train`,
`accuracy/train`, `accuracy/test`, `lr`, `firing_rate/<layer>`; the step is the epoch.
"""

from __future__ import annotations

from pathlib import Path

from suite.errors import SuiteError

INSTALL = "pip install 'suite[tensorboard]' (or: pip install tensorboard)"


class TrainLog:
    """A TensorBoard event file in `folder`; one `epoch(...)` call per finished epoch."""

    def __init__(self, folder: str | Path):
        writer_cls = self.require()
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise SuiteError(f"--tensorboard {folder} exists and is not a folder")
        self.writer = writer_cls(log_dir=str(folder))

    @staticmethod
    def require():
        """torch's SummaryWriter; a SuiteError saying how to install it if tensorboard is absent."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch.utils.tensorboard imports the tensorboard package
            raise SuiteError(f"--tensorboard needs the tensorboard package: {INSTALL}") from None
        return SummaryWriter

    def epoch(self, epoch: int, row: dict[str, float], rates: dict[str, float]) -> None:
        scalars = {"loss/train": row["train_loss"], "accuracy/train": row["train_acc"],
                   "accuracy/test": row["test_acc"], "lr": row["lr"],
                   **{f"firing_rate/{name}": rate for name, rate in rates.items()}}
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
