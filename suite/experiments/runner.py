"""Running a recipe: train or reuse its models, run its CKA and attack steps through the
library (suite.cka.jobs, suite.attacks.jobs), draw its figures, measure its findings from
the result files, write `experiment-<name>.json` (suite.results.experiment) and the page
`experiment-<name>.html` (suite.report.make: every result, figure and finding, offline).

Output folder (OUT, default reports/experiments/<name>): CKA results `cka-*.h5` with their
heatmaps, attack stores under `attacks/`, summary figures, `.steps.json` (what is done), the
findings file and the page (with the training curves of the experiment's checkpoints). Checkpoints live in the models folder (default runs/), shared between
experiments: a model two recipes need is trained once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from suite.attacks.jobs import run_attack
from suite.cka.jobs import run_cka, run_clean_adv
from suite.config import select_device
from suite.experiments import measures
from suite.experiments.findings import make_finding
from suite.experiments.recipe import FindingSpec, Recipe, attack_config, load_recipe
from suite.experiments.steps import Workspace
from suite.models.resnet import DEPTHS
from suite.report.make import make_report
from suite.report.figures import clean_adv_lines, cka_figure, diagonal_figure, robustness_curves, save_figure
from suite.results.attacks import read_store
from suite.results.cka import CKAResult
from suite.results.experiment import Experiment, Finding, write_experiment
from suite.results.provenance import provenance
from suite.settings import TrainSettings

# Layers of one residual block, in order, whose CKA shows a pattern repeating per block.
BLOCK_LAYERS = {"basic": ("act1", "conv1", "act2", "conv2", ""),
                "bottleneck": ("act1", "conv1", "act2", "conv2", "act3", "conv3", "")}


@dataclass
class ExperimentRun:
    """A finished experiment: its findings (as written), where, how long, what it trained."""

    experiment: Experiment
    path: Path
    seconds: float
    trained: list[Path] = field(default_factory=list)
    parts: list["ExperimentRun"] = field(default_factory=list)  # recipe "all": one per recipe
    page: Path | None = None  # the HTML report of the experiment


def default_out(name: str) -> Path:
    return Path("reports") / "experiments" / name


def run_experiment(recipe: Recipe | str | Path, *, overrides: dict[str, Any] | None = None,
                   out: Path | None = None, models: Path = Path("runs"), device: str = "auto",
                   data_root: Path = Path("datasets"), show_progress: bool = True,
                   log: Callable[[str], None] = lambda line: None) -> ExperimentRun:
    """Run a recipe (a Recipe, a shipped name or a .toml path) and write its findings file."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        raise ValueError("give overrides to load_recipe, not with a loaded Recipe")
    out = Path(out) if out is not None else default_out(recipe.name)
    select_device(device)  # a bad device fails before any work
    t0 = time.perf_counter()
    if recipe.kind == "all":
        return _run_all(recipe, out, models, device, data_root, show_progress, log, t0)
    ws = Workspace(out=out, models=models, device=device, data_root=data_root, show_progress=show_progress,
                   log=log)
    log(f"experiment {recipe.name} ({recipe.origin}) -> {out}")
    findings = KINDS[recipe.kind](recipe, ws)
    experiment = Experiment(recipe=recipe.name, config=recipe.to_config(), findings=findings,
                            files=ws.files, provenance=provenance(select_device(device)))
    path = write_experiment(out, experiment)
    page = _page(recipe.name, Path(out), [Path(out)], experiment)
    return ExperimentRun(experiment, path, time.perf_counter() - t0, list(ws.trained), page=page)


def _run_all(recipe, out, models, device, data_root, show_progress, log, t0) -> ExperimentRun:
    recipes = [load_recipe(name, recipe.overrides) for name in recipe.recipes]
    parts = [run_experiment(sub, out=Path(out) / sub.name, models=models, device=device, data_root=data_root,
                            show_progress=show_progress, log=log)
             for sub in recipes]
    files: dict[str, list[Path]] = {"results": [], "figures": [], "checkpoints": []}
    for part in parts:
        for group, paths in part.experiment.files.items():
            files[group] += [p for p in paths if p not in files[group]]
    config = {**recipe.to_config(), "parts": {p.experiment.recipe: p.experiment.config for p in parts}}
    experiment = Experiment(recipe=recipe.name, config=config,
                            findings=[f for p in parts for f in p.experiment.findings], files=files,
                            provenance=provenance(select_device(device)))
    path = write_experiment(out, experiment)
    page = _page(recipe.name, Path(out), [p.path.parent for p in parts], experiment)  # not experiment-all.json: each finding once
    return ExperimentRun(experiment, path, time.perf_counter() - t0,
                         [c for p in parts for c in p.trained], parts, page=page)


def _page(name: str, out: Path, folders: list[Path], experiment: Experiment) -> Path:
    """The experiment's HTML page beside its findings file: its results, figures and findings,
    and the training curves of the checkpoints it used (they live in the shared models folder)."""
    checkpoints = list(dict.fromkeys(Path(c) for c in experiment.files.get("checkpoints", [])))
    return make_report([*folders, *checkpoints], html=out / f"experiment-{name}.html",
                       title=f"suite experiment {name}").page


# ----------------------------------------------------------------------------- shared pieces
def _settings(recipe: Recipe, **changes) -> TrainSettings:
    """The training settings of one model of the recipe ([data] and [train], then `changes`;
    temporal, whose [train] timesteps is a list, passes each T as a change)."""
    data, train = recipe.section("data"), recipe.section("train")
    base = TrainSettings(dataset=data["dataset"], size=data["size"], arch=train["arch"], width=train["width"],
                         timesteps=train["timesteps"] if isinstance(train["timesteps"], int) else train["timesteps"][0],
                         epochs=train["epochs"], batch_size=train["batch_size"], lr=train["lr"],
                         seed=train["seed"], surrogate=train["surrogate"], tau=train["tau"],
                         threshold=train["threshold"])
    return replace(base, **changes)


def _cka(recipe: Recipe, ws: Workspace, step_id: str, compare: str, model: Path, model2: Path | None = None,
         layers: str | None = None, title: str = "") -> Path:
    """One CKA result (skipped when done) and its heatmap; returns the result's path."""
    cka = recipe.section("cka")
    params = {"compare": compare, "layers": layers, "samples": cka["samples"], "batch_size": cka["batch_size"],
              "seed": recipe.section("train")["seed"]}

    def run() -> list[Path]:
        done = run_cka(compare=compare, model=model, model2=model2, layers=layers, samples=cka["samples"],
                       batch_size=cka["batch_size"], seed=params["seed"], device=ws.device,
                       data_root=ws.data_root, out=ws.out, name=f"cka-{step_id}", show_progress=ws.show_progress)
        return [done.path]

    (path,) = ws.step(step_id, [model] + ([model2] if model2 else []), params, run)
    ws.add("results", path)
    png = path.with_suffix(".png")
    if not _up_to_date(png, path):
        save_figure(cka_figure(CKAResult.load(path), title or f"CKA {step_id}"), png)
    ws.add("figures", png)
    return path


def _up_to_date(figure: Path, *sources: Path) -> bool:
    """A figure newer than every file it shows need not be drawn again (a resumed run)."""
    return figure.is_file() and all(figure.stat().st_mtime_ns >= s.stat().st_mtime_ns for s in sources)


def _block_layers(arch: str) -> tuple[str, int]:
    """Every conv/LIF layer of every residual block of a ResNet, in order, and the period."""
    block_type, n = DEPTHS[int(arch.removeprefix("resnet"))]
    parts = BLOCK_LAYERS[block_type]
    names = [f"layer{i}.{j}" + (f".{p}" if p else "") for i in (1, 2, 3) for j in range(n) for p in parts]
    return ",".join(names), len(parts)


def _findings(recipe: Recipe, measure: str, make: Callable[[FindingSpec], list[Finding]]) -> list[Finding]:
    return [f for spec in recipe.findings if spec.measure == measure for f in make(spec)]


def _load_all(paths: list[Path], labels: list[str]) -> dict[str, CKAResult]:
    return {label: CKAResult.load(p) for label, p in zip(labels, paths)}


# ----------------------------------------------------------------------------- the recipes
def temporal(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """An SNN per T; time-step vs time-step CKA in every layer of each."""
    found = []
    for T in recipe.section("train")["timesteps"]:
        ckpt = ws.checkpoint(_settings(recipe, kind="snn", timesteps=T))
        path = _cka(recipe, ws, f"time-{ckpt.stem}", "time", ckpt, title="time-step CKA")
        found += _findings(recipe, "time-first-vs-last",
                           lambda s, p=path, T=T: [make_finding(s, measures.time_first_vs_last(p, T), f"-T{T}")])
    return found


def residual(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """Twins with and without residual connections: SNN vs ANN, and the SNN's conv/LIF layers."""
    arch = recipe.section("train")["arch"]
    fine, period = _block_layers(arch)
    models, within = {}, {}
    for res in (True, False):
        tag = "res" if res else "nores"
        snn = ws.checkpoint(_settings(recipe, kind="snn", residual=res))
        ann = ws.checkpoint(_settings(recipe, kind="ann", residual=res))
        models[res] = _cka(recipe, ws, f"models-{snn.stem}-vs-{ann.stem}", "models", snn, ann,
                           title=f"SNN vs ANN ({tag})")
        within[res] = _cka(recipe, ws, f"layers-{snn.stem}-conv-lif", "layers", snn, layers=fine,
                           title=f"SNN conv/LIF layers ({tag})")
    ws.add("figures", *save_figure(diagonal_figure(_load_all([models[True], models[False]],
                                                             ["with residual", "without residual"]),
                                                   f"SNN vs ANN diagonal, {arch}"), ws.out / "diagonal-residual.png"))
    return (_findings(recipe, "residual-ann-likeness",
                      lambda s: [make_finding(s, measures.residual_ann_likeness(models[True], models[False]))])
            + _findings(recipe, "periodic-pattern",
                        lambda s: [make_finding(s, measures.periodic_pattern(within[True], within[False], period))]))


def width_depth(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """Twins across depths (base width) and widths (base arch): heatmaps and diagonals."""
    train, grid = recipe.section("train"), recipe.section("grid")
    pairs: dict[tuple[str, float], Path] = {}

    def pair(arch: str, width: float, layers: str | None = None, tag: str = "") -> Path:
        snn = ws.checkpoint(_settings(recipe, kind="snn", arch=arch, width=width))
        ann = ws.checkpoint(_settings(recipe, kind="ann", arch=arch, width=width))
        return _cka(recipe, ws, f"models-{snn.stem}-vs-{ann.stem}{tag}", "models", snn, ann, layers=layers,
                    title=f"SNN vs ANN: {arch}, width {width:g}" + (" (conv/LIF layers)" if tag else ""))

    for arch in grid["archs"]:
        pairs[arch, train["width"]] = pair(arch, train["width"])
    for width in grid["widths"]:
        pairs[train["arch"], width] = pairs.get((train["arch"], width)) or pair(train["arch"], width)
    depth = {f"{a}": pairs[a, train["width"]] for a in grid["archs"]}
    width = {f"width {w:g}": pairs[train["arch"], w] for w in grid["widths"]}
    ws.add("figures", *save_figure(diagonal_figure(_load_all(list(depth.values()), list(depth)),
                                                   f"SNN vs ANN diagonal by depth (width {train['width']:g})"),
                                   ws.out / "diagonal-depth.png"))
    ws.add("figures", *save_figure(diagonal_figure(_load_all(list(width.values()), list(width)),
                                                   f"SNN vs ANN diagonal by width ({train['arch']})"),
                                   ws.out / "diagonal-width.png"))
    found = []
    if any(s.measure == "checkerboard" for s in recipe.findings):
        fine, period = _block_layers(train["arch"])
        grid_path = pair(train["arch"], train["width"], layers=fine, tag="-conv-lif")
        found += _findings(recipe, "checkerboard",
                           lambda s: [make_finding(s, measures.checkerboard(grid_path, period))])
    found += _findings(recipe, "diagonal-vs-depth", lambda s: [make_finding(s, measures.diagonal_series(
        depth, "depth", f"width {train['width']:g}"))])
    found += _findings(recipe, "diagonal-vs-width", lambda s: [make_finding(s, measures.diagonal_series(
        width, "width", train["arch"]))])
    return found


def event(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """Twins on images and on their event recordings: SNN vs ANN on each, static vs event."""
    data = recipe.section("data")
    static_name, event_name = data["dataset"], data["event_dataset"]
    snn, ann = (ws.checkpoint(_settings(recipe, kind=k)) for k in ("snn", "ann"))
    snn_e, ann_e = (ws.checkpoint(_settings(recipe, kind=k, dataset=event_name)) for k in ("snn", "ann"))
    on_static = _cka(recipe, ws, f"models-{snn.stem}-vs-{ann.stem}", "models", snn, ann,
                     title=f"SNN vs ANN on {static_name}")
    on_event = _cka(recipe, ws, f"models-{snn_e.stem}-vs-{ann_e.stem}", "models", snn_e, ann_e,
                    title=f"SNN vs ANN on {event_name}")
    static_event = _cka(recipe, ws, f"static-event-{snn.stem}-vs-{snn_e.stem}", "static-event", snn, snn_e,
                        title=f"static ({static_name}) vs event ({event_name}), SNNs")
    ws.add("figures", *save_figure(diagonal_figure(
        _load_all([on_static, on_event, static_event],
                  [f"SNN vs ANN, {static_name}", f"SNN vs ANN, {event_name}", "static vs event (SNNs)"]),
        "CKA diagonal: static and event data"), ws.out / "diagonal-event.png"))
    return (_findings(recipe, "event-vs-static", lambda s: [make_finding(
                s, measures.event_vs_static(on_event, on_static, event_name, static_name))])
            + _findings(recipe, "static-vs-event", lambda s: [make_finding(
                s, measures.static_vs_event(static_event, event_name, static_name))]))


def adversarial(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """PGD/FGSM over several eps on the SNN (BPTT) and the ANN; clean-vs-adversarial CKA."""
    attack, cka = recipe.section("attack"), recipe.section("cka")
    config = attack_config(attack, seed=recipe.section("train")["seed"])
    method = "pgd" if "pgd" in config.methods else config.methods[0]
    stores, runs, curves = {}, {}, []
    for label in ("SNN", "ANN"):
        ckpt = ws.checkpoint(_settings(recipe, kind=label.lower()))
        name = f"{ckpt.stem}-{'-'.join(config.methods)}-bptt"
        (store,) = ws.step(f"attack-{name}", [ckpt], config.to_dict(), lambda c=ckpt, n=name: [run_attack(
            model=c, config=config, device=ws.device, data_root=ws.data_root, out=ws.out / "attacks", name=n,
            show_progress=ws.show_progress).path])
        runs[label] = ws.step(f"clean-adv-{name}", [ckpt, store], {"method": method, "batch_size": cka["batch_size"]},
                              lambda c=ckpt, s=store, n=name: [r.path for r in run_clean_adv(
                                  attack=s, model=c, method=method, batch_size=cka["batch_size"], device=ws.device,
                                  data_root=ws.data_root, out=ws.out, name=f"cka-clean-adv-{n}",
                                  show_progress=ws.show_progress)])
        stores[label] = store
        curves.append((label, read_store(store).summary()))
        ws.add("results", store, *runs[label])
        ws.add("figures", *save_figure(clean_adv_lines([CKAResult.load(p) for p in runs[label]],
                                                       f"clean vs adversarial CKA ({method}): {label} {ckpt.stem}"),
                                       ws.out / f"clean-adv-{label.lower()}.png"))
    ws.add("figures", *save_figure(robustness_curves(curves, "robust accuracy: SNN (BPTT) and ANN"),
                                   ws.out / "robustness.png"))
    return (_findings(recipe, "adv-snn-vs-ann", lambda s: [make_finding(s, measures.adv_snn_vs_ann(
                runs["SNN"], runs["ANN"], stores["SNN"], stores["ANN"]))])
            + _findings(recipe, "adv-first-vs-last", lambda s: [make_finding(s, measures.adv_first_vs_last(
                runs["SNN"], runs["ANN"]))]))


KINDS: dict[str, Callable[[Recipe, Workspace], list[Finding]]] = {
    "width-depth": width_depth, "residual": residual, "temporal": temporal, "event": event,
    "adversarial": adversarial,
}
