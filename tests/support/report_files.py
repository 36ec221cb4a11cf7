"""Small result files with hand-chosen numbers, for the report and figure tests (no training).

Every value a test checks is set here by hand, so the expected numbers do not come from the
code under test.
"""

from __future__ import annotations

from pathlib import Path

import torch

from suite.checkpoint import save_checkpoint
from suite.data import DataSpec
from suite.models import build_model
from suite.report.figures import diagonal_figure, save_figure
from suite.results.attacks import AttackEntry, AttackStore, write_store
from suite.results.cka import CKAResult
from suite.results.experiment import Experiment, Finding, write_experiment
from suite.results.provenance import provenance
from suite.train import Optimisation
from tests.support.helpers import tiny_model_config

LAYERS = ["conv1", "layer1.0", "layer2.0", "fc"]
SPEC = DataSpec("digits", size=8)
# SNN-vs-ANN diagonal: largest drop between consecutive layers is layer1.0 -> layer2.0 (0.90 -> 0.40)
MODELS_DIAG = [0.95, 0.90, 0.40, 0.30]
# clean-vs-adversarial diagonal per eps; at 8/255 fc moves most (0.20), conv1 least (0.99)
CLEAN_ADV = {0.0: [1.0, 1.0, 1.0, 1.0], 2 / 255: [0.99, 0.97, 0.80, 0.60], 8 / 255: [0.99, 0.90, 0.50, 0.20]}
# robust accuracy (of 4 samples) per model, method, eps index (eps 0, 2/255, 8/255)
ROBUST = {"snn": {"fgsm": [0.75, 0.5, 0.25], "pgd": [0.75, 0.25, 0.0]},
          "ann": {"fgsm": [1.0, 0.75, 0.5], "pgd": [1.0, 0.5, 0.25]}}
EPS = (0.0, 2 / 255, 8 / 255)
LOSSES = [2.2, 1.5, 0.9]  # training loss per epoch


def model_config(kind: str):
    return tiny_model_config(kind, size=8, timesteps=3)


def cka(matrix: torch.Tensor, compare: str, layers_a=LAYERS, layers_b=LAYERS, **config) -> CKAResult:
    m = matrix.double()
    hsic_shape = m.shape[:-1]
    return CKAResult(matrix=m, layers_a=list(layers_a), layers_b=list(layers_b), n_samples=48, n_batches=3,
                     hsic_ab=m.clone(), hsic_aa=torch.ones(hsic_shape, dtype=torch.float64),
                     hsic_bb=torch.ones(hsic_shape, dtype=torch.float64), compare=compare,
                     time="mean", config=config)


def with_diagonal(values: list[float], off: float = 0.1) -> torch.Tensor:
    m = torch.full((len(values), len(values)), off, dtype=torch.float64)
    m[range(len(values)), range(len(values))] = torch.tensor(values, dtype=torch.float64)
    return m


def time_matrix(off_by_layer: list[float], T: int = 3) -> torch.Tensor:
    """[L, T, T]: 1 on the diagonal, layer l's value between distinct steps."""
    m = torch.empty(len(off_by_layer), T, T, dtype=torch.float64)
    for k, v in enumerate(off_by_layer):
        m[k].fill_(v)
        m[k].fill_diagonal_(1.0)
    return m


def store(kind: str) -> AttackStore:
    """4 samples of 1x2x2 inputs, labels 0..3; predictions wrong on the first k samples, where
    k gives the robust accuracy of ROBUST[kind]."""
    n = 4
    labels = torch.arange(n)
    clean = torch.full((n, 1, 2, 2), 0.5)
    entries = []
    for method, accs in ROBUST[kind].items():
        for eps, acc in zip(EPS, accs):
            wrong = n - round(acc * n)
            pred = labels.clone()
            pred[:wrong] = (labels[:wrong] + 1) % 10
            adv = clean + eps * torch.sign(torch.randn(n, 1, 2, 2))
            linf = (adv - clean).abs().flatten(1).amax(1)
            entries.append(AttackEntry(method, eps, adv, pred, linf, acc))
    clean_wrong = n - round(ROBUST[kind]["fgsm"][0] * n)
    clean_pred = labels.clone()
    clean_pred[:clean_wrong] = (labels[:clean_wrong] + 1) % 10
    cfg = {"attack": {"grad": "bptt" if kind == "snn" else "exact"}, "model": model_config(kind).to_dict(),
           "gradient": {"grad": "bptt" if kind == "snn" else "exact", "surrogate": "atan" if kind == "snn" else "-"},
           "checkpoint": f"runs/{kind}.pt", "data": SPEC.to_dict(), "split": "test", "device": "cpu"}
    return AttackStore(indices=torch.arange(n), labels=labels, clean_pred=clean_pred, entries=entries,
                       config=cfg, clean=clean)


def checkpoint(path: Path, kind: str = "snn") -> Path:
    cfg = model_config(kind)
    metrics = [{"epoch": e + 1, "train_loss": loss, "train_acc": 0.3 + 0.2 * e, "test_acc": 0.25 + 0.2 * e,
                "lr": 0.1} for e, loss in enumerate(LOSSES)]
    torch.manual_seed(0)
    save_checkpoint(path, cfg, SPEC, Optimisation(epochs=3).to_dict(), 3, metrics,
                    {"model": build_model(cfg).state_dict()}, provenance=provenance("cpu"))
    return path


def write_results(root: Path, experiment: bool = True) -> dict[str, Path]:
    """A folder like a finished run's: runs/ (2 checkpoints), attacks/ (SNN and ANN stores),
    reports/ (models, time, static-event, 3 clean-adv CKA results, and an experiment file)."""
    torch.manual_seed(0)
    runs, attacks, reports = root / "runs", root / "attacks", root / "reports"
    paths = {"snn.pt": checkpoint(runs / "snn.pt", "snn"), "ann.pt": checkpoint(runs / "ann.pt", "ann")}
    for kind in ("snn", "ann"):
        paths[f"{kind}-store"] = write_store(attacks / f"{kind}-fgsm-pgd.h5", store(kind), device="cpu")
    snn_cfg, ann_cfg = model_config("snn").to_dict(), model_config("ann").to_dict()
    common = dict(split="test", data_spec=SPEC.to_dict())
    paths["models"] = cka(with_diagonal(MODELS_DIAG), "models", model="runs/snn.pt", model2="runs/ann.pt",
                          model_config=snn_cfg, model2_config=ann_cfg, **common).save(
        reports / "cka-models-snn-vs-ann.h5", device="cpu")
    paths["time"] = cka(time_matrix([0.98, 0.95, 0.70, 0.55]), "time", model="runs/snn.pt", model_config=snn_cfg,
                        **common).save(reports / "cka-time-snn.h5", device="cpu")
    paths["static-event"] = cka(with_diagonal([0.8, 0.7, 0.6, 0.5]), "static-event", model="runs/snn.pt",
                                model2="runs/snn-dvs.pt", model_config=snn_cfg, model2_config=snn_cfg,
                                event_input="frames", **common).save(reports / "cka-static-event-snn.h5", device="cpu")
    for eps, diag in CLEAN_ADV.items():
        label = "0" if eps == 0 else f"{round(eps * 255)}/255"
        r = cka(with_diagonal(diag), "clean-adv", attack=str(paths["snn-store"]), model="runs/snn.pt",
                model_config=snn_cfg, method="pgd", eps=eps, eps_label=label, robust_acc=0.5)
        paths[f"clean-adv-{label}"] = r.save(reports / f"cka-clean-adv-snn-pgd-eps{label.replace('/', '_')}.h5",
                                             device="cpu")
    if experiment:
        finding = Finding(key="drop", sentence="SNN-vs-ANN CKA falls from 0.95 to 0.30 by the last layer",
                          measured={"first": 0.95, "last": 0.30}, claim="similarity falls with depth",
                          source="Sec. 4.1", rule="last < first", verdict="agrees", files=[paths["models"]])
        paths["experiment-figure"] = save_figure(diagonal_figure({"SNN vs ANN": CKAResult.load(paths["models"])},
                                                                 "diagonal"), reports / "diagonal.png")[0]
        exp = Experiment(recipe="tiny", config={"epochs": 1, "width": 0.25}, findings=[finding],
                         files={"results": [paths["models"]], "figures": [paths["experiment-figure"]],
                                "checkpoints": []},
                         provenance=provenance("cpu"))
        paths["experiment"] = write_experiment(reports, exp)
    return paths
