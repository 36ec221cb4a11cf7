"""`suite demo`: the whole pipeline on the embedded digits, small enough for 2 CPU cores.

Stages: train an SNN and its ANN twin on `digits`; CKA of SNN vs ANN and across the SNN's
time steps. Checkpoints go to OUT/runs (default: ./runs), results to OUT/reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from suite.cka.jobs import CKARun, run_cka
from suite.train import TrainResult
from suite.workflows import train_one

DEMO = dict(dataset="digits", arch="resnet20", timesteps=4, width=0.5, residual=True, surrogate="atan",
            tau=2.0, threshold=1.0, size=16, epochs=8, batch_size=64, lr=0.1, tet=False, workers=0, seed=0)
CKA_SAMPLES = 384
CKA_BATCH = 128


@dataclass
class DemoSummary:
    """What the demo produced, for the CLI to print."""

    trained: dict[str, TrainResult] = field(default_factory=dict)
    cka: dict[str, CKARun] = field(default_factory=dict)
    seconds: float = 0.0
    folders: dict[str, Path] = field(default_factory=dict)


def run_demo(out: Path | None = None, device: str = "auto", data_root: Path = Path("datasets"),
             epochs: int | None = None, show_progress: bool = True) -> DemoSummary:
    """Run every demo stage; `out` (if given) holds runs/, reports/ (and attacks/)."""
    t0 = time.perf_counter()
    root = Path(out) if out is not None else Path(".")
    folders = {"runs": root / "runs", "reports": root / "reports", "attacks": root / "attacks"}
    summary = DemoSummary(folders=folders)
    settings = {**DEMO, "epochs": epochs or DEMO["epochs"]}
    for kind in ("snn", "ann"):
        summary.trained[kind] = train_one(**settings, kind=kind, device=device, data_root=data_root,
                                          out=folders["runs"], name=None, resume=False,
                                          show_progress=show_progress)
    snn, ann = summary.trained["snn"].checkpoint, summary.trained["ann"].checkpoint
    common = dict(samples=CKA_SAMPLES, batch_size=CKA_BATCH, seed=0, device=device, data_root=data_root,
                  out=folders["reports"], show_progress=show_progress)
    summary.cka["snn vs ann"] = run_cka(compare="models", model=snn, model2=ann, **common)
    summary.cka["snn time"] = run_cka(compare="time", model=snn, **common)
    summary.seconds = time.perf_counter() - t0
    return summary
