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
from suite.cka.jobs import run_clean_adv, run_cka
from suite.cka.settings import CKAInputs
from suite.device import select_device
from suite.experiments import measures
from suite.experiments.findings import make_finding
from suite.experiments.recipe import FindingSpec, Recipe, load_recipe
from suite.experiments.steps import Workspace
from suite.models import build_model
from suite.report.make import make_report
from suite.report.figures import clean_adv_lines, cka_figure, diagonal_figure, robustness_curves, save_figure
from suite.results.attacks import read_store
from suite.results.cka import CKAResult
from suite.results.experiment import Experiment, Finding, write_experiment
from suite.results.provenance import provenance
from suite.train import TrainConfig
from suite.where import Where

FINE = "@conv-lif"  # every conv and activation layer of every block, block by block (TwinNet.layer_sets)


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


def run_experiment(recipe: Recipe | str | Path, where: Where, *, models: Path = Path("runs"),
                   log: Callable[[str], None] = lambda line: None) -> ExperimentRun:
    """Run a recipe (a Recipe, a shipped name or a .toml path) into WHERE.out and write its
    findings file; checkpoints are reused from or trained into `models`."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    dev = select_device(where.device)  # a bad device fails before any work
    t0 = time.perf_counter()
    if recipe.kind == "all":
        return _run_all(recipe, where, models, log, t0)
    ws = Workspace(where=where, models=models, log=log)
    log(f"experiment {recipe.name} ({recipe.origin}) -> {where.out}")
    findings = KINDS[recipe.kind](recipe, ws)
    experiment = Experiment(recipe=recipe.name, config=recipe.to_config(), findings=findings,
                            files=ws.files, provenance=provenance(dev))
    path = write_experiment(where.out, experiment)
    page = _page(recipe.name, where.out, [where.out], experiment)
    return ExperimentRun(experiment, path, time.perf_counter() - t0, list(ws.trained), page=page)


def _run_all(recipe: Recipe, where: Where, models: Path, log, t0: float) -> ExperimentRun:
    recipes = [load_recipe(name, recipe.overrides) for name in recipe.recipes]
    parts = [run_experiment(sub, where.into(where.out / sub.name), models=models, log=log) for sub in recipes]
    files: dict[str, list[Path]] = {"results": [], "figures": [], "checkpoints": []}
    for part in parts:
        for group, paths in part.experiment.files.items():
            files[group] += [p for p in paths if p not in files[group]]
    config = {**recipe.to_config(), "parts": {p.experiment.recipe: p.experiment.config for p in parts}}
    experiment = Experiment(recipe=recipe.name, config=config,
                            findings=[f for p in parts for f in p.experiment.findings], files=files,
                            provenance=provenance(select_device(where.device)))
    path = write_experiment(where.out, experiment)
    # the page reads each part's folder, not experiment-all.json: each finding once
    page = _page(recipe.name, where.out, [p.path.parent for p in parts], experiment)
    return ExperimentRun(experiment, path, time.perf_counter() - t0,
                         [c for p in parts for c in p.trained], parts, page=page)


def _page(name: str, out: Path, folders: list[Path], experiment: Experiment) -> Path:
    """The experiment's HTML page beside its findings file: its results, figures and findings,
    and the training curves of the checkpoints it used (they live in the shared models folder)."""
    checkpoints = list(dict.fromkeys(Path(c) for c in experiment.files.get("checkpoints", [])))
    return make_report([*folders, *checkpoints], html=out / f"experiment-{name}.html",
                       title=f"suite experiment {name}").page


# ----------------------------------------------------------------------------- shared pieces
def _blocks(config: TrainConfig) -> tuple[list[str], int]:
    """The block names of the model `config` trains, and how many conv/activation layers each
    block lists (the period of a pattern that repeats with the blocks), asked of the model."""
    blocks = build_model(config.model_config).blocks()
    return [b.name for b in blocks], len(blocks[0].layers)


def _cka(recipe: Recipe, ws: Workspace, step_id: str, compare: str, inputs: CKAInputs,
         layers: str | None = None, title: str = "") -> Path:
    """One CKA result (skipped when done) and its heatmap; returns the result's path."""
    config = replace(recipe.cka, compare=compare, layers=None if layers is None else (layers,))
    models = [inputs.model] + ([inputs.model2] if inputs.model2 else [])

    def run() -> list[Path]:
        return [run_cka(config, inputs, ws.where, name=f"cka-{step_id}").path]

    (path,) = ws.step(step_id, models, config.to_dict(), run)
    ws.add("results", path)
    png = path.with_suffix(".png")
    if not _up_to_date(png, path):
        save_figure(cka_figure(CKAResult.load(path), title or f"CKA {step_id}"), png)
    ws.add("figures", png)
    return path


def _up_to_date(figure: Path, *sources: Path) -> bool:
    """A figure newer than every file it shows need not be drawn again (a resumed run)."""
    return figure.is_file() and all(figure.stat().st_mtime_ns >= s.stat().st_mtime_ns for s in sources)


def _findings(recipe: Recipe, measure: str, make: Callable[[FindingSpec], list[Finding]]) -> list[Finding]:
    return [f for spec in recipe.findings if spec.measure == measure for f in make(spec)]


def _load_all(paths: list[Path], labels: list[str]) -> dict[str, CKAResult]:
    return {label: CKAResult.load(p) for label, p in zip(labels, paths)}


# ----------------------------------------------------------------------------- the recipes
def temporal(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """An SNN per T; time-step vs time-step CKA in every layer of each."""
    found = []
    for T in recipe.timesteps:
        config = recipe.train.variant(kind="snn", timesteps=T)
        blocks, _ = _blocks(config)
        ckpt = ws.checkpoint(config)
        path = _cka(recipe, ws, f"time-{ckpt.stem}", "time", CKAInputs(model=ckpt), title="time-step CKA")
        found += _findings(recipe, "time-first-vs-last",
                           lambda s, p=path, T=T, b=blocks: [make_finding(s, measures.time_first_vs_last(p, T, b),
                                                                          f"-T{T}")])
    return found


def residual(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """Twins with and without residual connections: SNN vs ANN, and the SNN's conv/LIF layers."""
    arch = recipe.train.model.arch
    blocks, period = _blocks(recipe.train)
    models, within = {}, {}
    for res in (True, False):
        tag = "res" if res else "nores"
        snn = ws.checkpoint(recipe.train.variant(kind="snn", residual=res))
        ann = ws.checkpoint(recipe.train.variant(kind="ann", residual=res))
        models[res] = _cka(recipe, ws, f"models-{snn.stem}-vs-{ann.stem}", "models", CKAInputs(model=snn, model2=ann),
                           title=f"SNN vs ANN ({tag})")
        within[res] = _cka(recipe, ws, f"layers-{snn.stem}-conv-lif", "layers", CKAInputs(model=snn), layers=FINE,
                           title=f"SNN conv/LIF layers ({tag})")
    ws.add("figures", *save_figure(diagonal_figure(_load_all([models[True], models[False]],
                                                             ["with residual", "without residual"]),
                                                   f"SNN vs ANN diagonal, {arch}"), ws.out / "diagonal-residual.png"))
    return (_findings(recipe, "residual-ann-likeness", lambda s: [make_finding(
                s, measures.residual_ann_likeness(models[True], models[False], blocks))])
            + _findings(recipe, "periodic-pattern",
                        lambda s: [make_finding(s, measures.periodic_pattern(within[True], within[False], period))]))


def width_depth(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """Twins across depths (base width) and widths (base arch): heatmaps and diagonals."""
    base, grid = recipe.train, recipe.grid
    arch0, width0 = base.model.arch, base.model.width
    pairs: dict[tuple[str, float], Path] = {}
    blocks: dict[str, list[str]] = {}

    def pair(arch: str, width: float, layers: str | None = None, tag: str = "") -> Path:
        snn = ws.checkpoint(base.variant(kind="snn", arch=arch, width=width))
        ann = ws.checkpoint(base.variant(kind="ann", arch=arch, width=width))
        return _cka(recipe, ws, f"models-{snn.stem}-vs-{ann.stem}{tag}", "models", CKAInputs(model=snn, model2=ann),
                    layers=layers,
                    title=f"SNN vs ANN: {arch}, width {width:g}" + (" (conv/LIF layers)" if tag else ""))

    for arch in grid.archs:
        pairs[arch, width0] = pair(arch, width0)
        blocks[arch] = _blocks(base.variant(arch=arch))[0]
    for width in grid.widths:
        pairs[arch0, width] = pairs.get((arch0, width)) or pair(arch0, width)
    blocks.setdefault(arch0, _blocks(base)[0])
    depth = {f"{a}": (pairs[a, width0], blocks[a]) for a in grid.archs}
    width = {f"width {w:g}": (pairs[arch0, w], blocks[arch0]) for w in grid.widths}
    for series, what, fixed, png in ((depth, "depth", f"width {width0:g}", "diagonal-depth.png"),
                                     (width, "width", arch0, "diagonal-width.png")):
        ws.add("figures", *save_figure(diagonal_figure(_load_all([p for p, _ in series.values()], list(series)),
                                                       f"SNN vs ANN diagonal by {what} ({fixed})"), ws.out / png))
    found = []
    if any(s.measure == "checkerboard" for s in recipe.findings):
        grid_path = pair(arch0, width0, layers=FINE, tag="-conv-lif")
        period = _blocks(base)[1]
        found += _findings(recipe, "checkerboard",
                           lambda s: [make_finding(s, measures.checkerboard(grid_path, period))])
    found += _findings(recipe, "diagonal-vs-depth", lambda s: [make_finding(s, measures.diagonal_series(
        depth, "depth", f"width {width0:g}"))])
    found += _findings(recipe, "diagonal-vs-width", lambda s: [make_finding(s, measures.diagonal_series(
        width, "width", arch0))])
    return found


def event(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """Twins on images and on their event recordings: SNN vs ANN on each, static vs event."""
    static_name, event_name = recipe.train.data.name, recipe.event_dataset
    blocks, _ = _blocks(recipe.train)
    snn, ann = (ws.checkpoint(recipe.train.variant(kind=k)) for k in ("snn", "ann"))
    snn_e, ann_e = (ws.checkpoint(recipe.train.variant(kind=k, dataset=event_name)) for k in ("snn", "ann"))
    on_static = _cka(recipe, ws, f"models-{snn.stem}-vs-{ann.stem}", "models", CKAInputs(model=snn, model2=ann),
                     title=f"SNN vs ANN on {static_name}")
    on_event = _cka(recipe, ws, f"models-{snn_e.stem}-vs-{ann_e.stem}", "models", CKAInputs(model=snn_e, model2=ann_e),
                    title=f"SNN vs ANN on {event_name}")
    static_event = _cka(recipe, ws, f"static-event-{snn.stem}-vs-{snn_e.stem}", "static-event",
                        CKAInputs(model=snn, model2=snn_e), title=f"static ({static_name}) vs event ({event_name}), SNNs")
    ws.add("figures", *save_figure(diagonal_figure(
        _load_all([on_static, on_event, static_event],
                  [f"SNN vs ANN, {static_name}", f"SNN vs ANN, {event_name}", "static vs event (SNNs)"]),
        "CKA diagonal: static and event data"), ws.out / "diagonal-event.png"))
    return (_findings(recipe, "event-vs-static", lambda s: [make_finding(
                s, measures.event_vs_static(on_event, on_static, event_name, static_name, blocks))])
            + _findings(recipe, "static-vs-event", lambda s: [make_finding(
                s, measures.static_vs_event(static_event, event_name, static_name, blocks))]))


def adversarial(recipe: Recipe, ws: Workspace) -> list[Finding]:
    """PGD/FGSM over several eps on the SNN (BPTT) and the ANN; clean-vs-adversarial CKA."""
    config = recipe.attack
    method = "pgd" if "pgd" in config.methods else config.methods[0]
    clean_adv = replace(recipe.cka, compare="clean-adv")
    blocks, _ = _blocks(recipe.train)
    stores, runs, curves = {}, {}, []
    for label in ("SNN", "ANN"):
        ckpt = ws.checkpoint(recipe.train.variant(kind=label.lower()))
        name = f"{ckpt.stem}-{'-'.join(config.methods)}-{config.grad}"
        (store,) = ws.step(f"attack-{name}", [ckpt], config.to_dict(), lambda c=ckpt, n=name: [run_attack(
            c, config, ws.where.into(ws.out / "attacks"), name=n).path])
        runs[label] = ws.step(f"clean-adv-{name}", [ckpt, store], {"method": method, "batch_size": clean_adv.batch_size},
                              lambda c=ckpt, s=store, n=name: [r.path for r in run_clean_adv(
                                  clean_adv, CKAInputs(model=c, attack=s, method=method), ws.where,
                                  name=f"cka-clean-adv-{n}")])
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
                runs["SNN"], runs["ANN"], blocks))]))


KINDS: dict[str, Callable[[Recipe, Workspace], list[Finding]]] = {
    "width-depth": width_depth, "residual": residual, "temporal": temporal, "event": event,
    "adversarial": adversarial,
}
