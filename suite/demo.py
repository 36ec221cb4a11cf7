"""`suite demo`: the whole pipeline on the embedded digits, small enough for 2 CPU cores.

Stages: (1) train a ResNet-20 SNN and its ANN twin on `digits`; (2) CKA of SNN vs ANN and
across the SNN's time steps; (3) FGSM, PGD-10 and SA-PGD at eps 0, 2/255, 4/255 and 8/255 on
both (the SNN through time with the adaptive surrogate ASSG: SA-PGD through ASSG is the
strongest white-box attack on it in benchmarks/README.md): robustness curves, the worst case,
and clean-vs-adversarial CKA per layer and eps on SA-PGD's examples;
(4) train an SNN on `digits-dvs` (the saccade-simulated event version of the same images)
and compare static vs event representations with CKA; (5) the HTML report of all of it.
Checkpoints go to OUT/runs, attack stores to OUT/attacks, results and the page to OUT/reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from suite.attacks.jobs import AttackRun, run_attack
from suite.attacks.settings import AttackConfig
from suite.cka.jobs import CKARun, run_clean_adv, run_cka
from suite.cka.settings import CKAConfig, CKAInputs
from suite.data import DataSpec
from suite.files import ensure_out_dir
from suite.models import ModelSpec
from suite.report.make import make_report
from suite.train import Optimisation, TrainConfig, TrainResult, train_one
from suite.where import Where


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs: the SNN's training (its ANN twin and its twin on events are variants
    of it), the attacks (`attack`, and `snn_attack` for the SNN), the CKA sampling, and which
    attack's examples the clean-vs-adversarial CKA reads."""

    train: TrainConfig
    attack: AttackConfig
    snn_attack: AttackConfig
    cka: CKAConfig
    clean_adv_method: str


# The demo's own choices; everything else is `suite train`'s, `suite attack`'s and `suite cka`'s default.
_ATTACK = AttackConfig(methods=("fgsm", "pgd", "sa-pgd"), eps=(0.0, 2 / 255, 4 / 255, 8 / 255), alpha=2 / 255,
                       steps=10, samples=256, batch_size=128)
DEMO = DemoPlan(
    train=TrainConfig(data=DataSpec("digits", size=16), model=ModelSpec(width=0.5), optim=Optimisation(epochs=8)),
    attack=_ATTACK, snn_attack=replace(_ATTACK, grad="assg"),
    cka=CKAConfig(samples=384, batch_size=128), clean_adv_method="sa-pgd",
)
PAGE = "demo.html"  # written to OUT/reports


@dataclass
class DemoSummary:
    """What the demo produced, for the CLI to print, and the training config of its SNN."""

    config: TrainConfig = DEMO.train
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


def run_demo(where: Where, epochs: int | None = None, plan: DemoPlan | None = None) -> DemoSummary:
    """Run every demo stage of `plan` (default `DEMO`); WHERE.out holds runs/, attacks/ and reports/."""
    plan = plan or DEMO
    t0 = time.perf_counter()
    snn_config = plan.train.variant(epochs=epochs)  # a bad --epochs fails before any folder is made
    root = ensure_out_dir(where.out)
    folders = {"runs": root / "runs", "attacks": root / "attacks", "reports": root / "reports"}
    summary = DemoSummary(config=snn_config, folders=folders)
    runs, reports = where.into(folders["runs"]), where.into(folders["reports"])

    # (1) twins on static digits
    for kind in ("snn", "ann"):
        summary.trained[kind] = train_one(snn_config.variant(kind=kind), runs)
    snn, ann = summary.trained["snn"].checkpoint, summary.trained["ann"].checkpoint

    # (2) SNN vs ANN, and the SNN across time
    cka = plan.cka
    summary.cka["SNN vs ANN"] = run_cka(replace(cka, compare="models"), CKAInputs(model=snn, model2=ann), reports)
    summary.cka["SNN over time"] = run_cka(replace(cka, compare="time"), CKAInputs(model=snn), reports)

    # (3) attacks from eps 0 to 8/255 and how far they move each layer
    for label, ckpt, config in (("SNN", snn, plan.snn_attack), ("ANN", ann, plan.attack)):
        run = run_attack(ckpt, config, where.into(folders["attacks"]))
        summary.attacks[label] = run
        summary.clean_adv[label] = run_clean_adv(replace(cka, compare="clean-adv"),
                                                 CKAInputs(attack=run.path, method=plan.clean_adv_method), reports)

    # (4) the same images as events: an SNN on digits-dvs, static vs event CKA
    summary.trained["snn-dvs"] = train_one(snn_config.variant(dataset="digits-dvs"), runs)
    summary.cka["static (SNN) vs event (SNN-DVS)"] = run_cka(
        replace(cka, compare="static-event"), CKAInputs(model=snn, model2=summary.trained["snn-dvs"].checkpoint), reports)

    # (5) one page with every result, figure and provenance
    summary.page = make_report(summary.files(), html=folders["reports"] / PAGE,
                               title="suite demo: digits, ResNet-20 SNN/ANN twins").page
    summary.seconds = time.perf_counter() - t0
    return summary
