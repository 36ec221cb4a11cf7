"""`suite demo`: the whole pipeline on the embedded digits, small enough for 2 CPU cores.

Stages: (1) train a ResNet-20 SNN and its ANN twin on `digits`; (2) CKA of SNN vs ANN and
across the SNN's time steps; (3) FGSM and PGD at eps 0, 2/255, 4/255 and 8/255 on both
(BPTT for the SNN): robustness curves, and clean-vs-adversarial CKA per layer and eps;
(4) train an SNN on `digits-dvs` (the saccade-simulated event version of the same images)
and compare static vs event representations with CKA; (5) the HTML report of all of it.
Checkpoints go to OUT/runs, attack stores to OUT/attacks, results and the page to OUT/reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from suite.attacks.jobs import AttackRun, run_attack
from suite.attacks.config import AttackConfig
from suite.cka.jobs import CKARun, run_cka, run_clean_adv
from suite.files import ensure_out_dir
from suite.report.make import make_report
from suite.settings import TrainSettings
from suite.train import TrainResult
from suite.workflows import train_one

# The demo's own choices; everything else is `suite train`'s default (ResNet-20, T=4, ...).
DEMO = TrainSettings(dataset="digits", width=0.5, size=16, epochs=8)
CKA_SAMPLES = 384
CKA_BATCH = 128
ATTACK = dict(methods=("fgsm", "pgd"), eps=(0.0, 2 / 255, 4 / 255, 8 / 255), alpha=2 / 255, steps=10, samples=256,
              batch_size=128)
PAGE = "demo.html"  # written to OUT/reports


@dataclass
class DemoSummary:
    """What the demo produced, for the CLI to print, and the training settings it used."""

    settings: TrainSettings = DEMO
    trained: dict[str, TrainResult] = field(default_factory=dict)
    cka: dict[str, CKARun] = field(default_factory=dict)
    attacks: dict[str, AttackRun] = field(default_factory=dict)
    clean_adv: dict[str, list[CKARun]] = field(default_factory=dict)
    seconds: float = 0.0
    folders: dict[str, Path] = field(default_factory=dict)
    page: Path | None = None

    def files(self) -> list[Path]:
        """Every result file the demo wrote: checkpoints, attack stores, CKA results."""
        return [*(r.checkpoint for r in self.trained.values()), *(r.path for r in self.attacks.values()),
                *(r.path for r in self.cka.values()), *(r.path for runs in self.clean_adv.values() for r in runs)]


def run_demo(out: Path | None = None, device: str = "auto", data_root: Path = Path("datasets"),
             epochs: int | None = None, show_progress: bool = True) -> DemoSummary:
    """Run every demo stage; `out` (if given) holds runs/, attacks/ and reports/."""
    t0 = time.perf_counter()
    root = ensure_out_dir(out) if out is not None else Path(".")
    folders = {"runs": root / "runs", "attacks": root / "attacks", "reports": root / "reports"}
    settings = replace(DEMO, epochs=epochs or DEMO.epochs)
    summary = DemoSummary(settings=settings, folders=folders)
    where = dict(device=device, data_root=data_root, out=folders["runs"], show_progress=show_progress)
    common = dict(device=device, data_root=data_root, out=folders["reports"], show_progress=show_progress)

    # (1) twins on static digits
    for kind in ("snn", "ann"):
        summary.trained[kind] = train_one(replace(settings, kind=kind), **where)
    snn, ann = summary.trained["snn"].checkpoint, summary.trained["ann"].checkpoint

    # (2) SNN vs ANN, and the SNN across time
    sampled = dict(samples=CKA_SAMPLES, batch_size=CKA_BATCH, seed=0, **common)
    summary.cka["SNN vs ANN"] = run_cka(compare="models", model=snn, model2=ann, **sampled)
    summary.cka["SNN over time"] = run_cka(compare="time", model=snn, **sampled)

    # (3) attacks from eps 0 to 8/255 and how far they move each layer
    for label, ckpt in (("SNN", snn), ("ANN", ann)):
        cfg = AttackConfig(grad="bptt", seed=0, **ATTACK)
        run = run_attack(model=ckpt, config=cfg, device=device, data_root=data_root, out=folders["attacks"],
                         show_progress=show_progress)
        summary.attacks[label] = run
        summary.clean_adv[label] = run_clean_adv(attack=run.path, method="pgd", batch_size=CKA_BATCH, **common)

    # (4) the same images as events: an SNN on digits-dvs, static vs event CKA
    summary.trained["snn-dvs"] = train_one(replace(settings, dataset="digits-dvs", kind="snn"), **where)
    summary.cka["static (SNN) vs event (SNN-DVS)"] = run_cka(
        compare="static-event", model=snn, model2=summary.trained["snn-dvs"].checkpoint, **sampled)

    # (5) one page with every result, figure and provenance
    summary.page = make_report(summary.files(), html=folders["reports"] / PAGE,
                               title="suite demo: digits, ResNet-20 SNN/ANN twins").page
    summary.seconds = time.perf_counter() - t0
    return summary
