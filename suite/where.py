"""`Where`: where a job runs and what it reads and writes, the part of every library call behind
a command that is not its config (the device, the data root, the output folder, progress bars)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Where:
    """A job's place: `out` is the folder it writes to; `device` as `select_device` reads it
    (auto, cpu, cuda, cuda:N); `data_root` holds the datasets and frame caches."""

    out: Path
    device: str = "auto"
    data_root: Path = Path("datasets")
    show_progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "data_root", Path(self.data_root))

    def into(self, out: str | Path) -> "Where":
        """The same place writing to another folder."""
        return replace(self, out=Path(out))
