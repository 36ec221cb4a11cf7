"""Running a recipe: for every seed, train or reuse its models; run each finding's comparisons
(suite.experiments.plans) under every protocol (suite.experiments.protocols) through the library
(suite.cka.jobs, suite.attacks.jobs); measure each finding under every similarity measure with
its bootstrap (suite.experiments.measures, intervals); add the noise ceiling (each model against
its twin of the next seed) and floor (against an untrained twin) of every two-model comparison;
write `experiment-<name>.json` (suite.results.experiment), the figures and the page
`experiment-<name>.html` (suite.report.make).

Output folder (OUT, default reports/experiments/<name>): CKA results `cka-*.h5` (every seed,
protocol, ceiling and floor), attack stores under `attacks/`, untrained twins under `init/`,
figures (heatmaps and summaries of the first seed, a forest plot per finding), `.steps.json`
(what is done: an interrupted experiment resumes where it stopped), the findings file and the
page. Checkpoints live in the models folder (default runs/), shared between experiments: a
model two recipes need is trained once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from suite.attacks.jobs import run_attack
from suite.cka.jobs import run_clean_adv, run_cka
from suite.cka.settings import CKAInputs
from suite.device import select_device
from suite.experiments import figures as experiment_figures
from suite.experiments.findings import Estimate, estimate, make_finding
from suite.experiments.intervals import interval, replicates
from suite.experiments.measures import MEASURES, Source, mean_diagonal
from suite.experiments.plans import Comparison, FindingPlan, plan_findings
from suite.experiments.protocols import PROTOCOLS, Protocol
from suite.experiments.recipe import Recipe, load_recipe
from suite.experiments.steps import Workspace
from suite.models import build_model
from suite.report.make import make_report
from suite.results.cka import CKAResult
from suite.results.experiment import Experiment, Finding, write_experiment
from suite.results.provenance import provenance
from suite.train import TrainConfig
from suite.where import Where


@dataclass
class ExperimentRun:
    """A finished experiment: its findings (as written), where, how long, what it trained."""

    experiment: Experiment
    path: Path
    seconds: float
    trained: list[Path] = field(default_factory=list)
    parts: list["ExperimentRun"] = field(default_factory=list)  # recipe "all": one per recipe
    page: Path | None = None  # the HTML report of the experiment
    seconds_by_step: dict[str, float] = field(default_factory=dict)  # training, cka kinds, attack, ..., rest


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
    lab = Lab(recipe, Workspace(where=where, models=models, log=log))
    log(f"experiment {recipe.name} ({recipe.origin}) -> {where.out}")
    findings = [lab.finding(plan) for plan in plan_findings(recipe)]
    with lab.ws.timed("figures"):
        lab.draw_summaries(findings)
    experiment = Experiment(recipe=recipe.name, config=recipe.to_config(), findings=findings,
                            files=lab.ws.files, provenance=provenance(dev))
    path = write_experiment(where.out, experiment)
    with lab.ws.timed("page"):
        page = _page(recipe.name, where.out, [path, *lab.shown], experiment)
    seconds = time.perf_counter() - t0
    breakdown = {**lab.ws.seconds, "rest": seconds - sum(lab.ws.seconds.values())}
    return ExperimentRun(experiment, path, seconds, list(lab.ws.trained), page=page, seconds_by_step=breakdown)


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
    # the page reads each part's findings file, not experiment-all.json: each finding once
    page = _page(recipe.name, where.out, [p.path for p in parts], experiment)
    seconds = time.perf_counter() - t0
    breakdown: dict[str, float] = {}
    for part in parts:
        for key, value in part.seconds_by_step.items():
            breakdown[key] = breakdown.get(key, 0.0) + value
    breakdown["rest"] = breakdown.get("rest", 0.0) + seconds - sum(p.seconds for p in parts)
    return ExperimentRun(experiment, path, seconds, [c for p in parts for c in p.trained], parts, page=page,
                         seconds_by_step=breakdown)


def _page(name: str, out: Path, shown: list[Path], experiment: Experiment) -> Path:
    """The experiment's HTML page beside its findings file: the findings with their figures, the
    results of the first seed, and the training curves of the checkpoints it used."""
    checkpoints = list(dict.fromkeys(Path(c) for c in experiment.files.get("checkpoints", [])))
    return make_report([*shown, *checkpoints], html=out / f"experiment-{name}.html",
                       title=f"suite experiment {name}").page


class Lab:
    """Runs a recipe's comparisons at any seed under any protocol, each once (`Workspace.step`),
    and turns them into findings."""

    def __init__(self, recipe: Recipe, ws: Workspace):
        self.recipe, self.ws = recipe, ws
        self.shown: list[Path] = []  # results of the first seed, for the page
        self._models: dict[TrainConfig, object] = {}
        self._first: dict[tuple[str, str], tuple[Comparison, Path]] = {}  # (title, protocol) -> first seed's
        self._ceiling_rows: dict[tuple[str, str], Path] = {}  # (title, protocol) -> first seed's a-vs-a' result

    # ------------------------------------------------------------------------- running comparisons
    def _structure(self, config: TrainConfig):
        if config not in self._models:
            self._models[config] = build_model(config.model_config)
        return self._models[config]

    def cka(self, c: Comparison, protocol: Protocol) -> Path:
        """The result file of comparison `c` under `protocol` (clean adv: the attack's largest eps)."""
        if c.compare == "clean-adv":
            return self._clean_adv(c, protocol)
        a = self.ws.checkpoint(c.a)
        b = None if c.b is None else (self.ws.untrained(c.b) if c.b_untrained else self.ws.checkpoint(c.b))
        is_time = c.compare == "time"
        layers = protocol.layers(c.layers)
        config = replace(self.recipe.cka, compare=c.compare, layers=None if layers is None else (layers,),
                         time="each" if is_time else protocol.time)
        inputs = CKAInputs(model=a, model2=b)
        # named by the layer set it hooks: where a protocol's fine and default sets are one set
        # (snncka), the two comparisons are one step, computed once
        which = "default" if layers == protocol.default else c.layers
        step_id = f"{c.compare}-{a.stem}" + (f"-vs-{b.stem}" if b else "") + f"-{which}-{protocol.name}"

        def run() -> list[Path]:
            return [run_cka(config, inputs, self.ws.where, name=f"cka-{step_id}").path]

        (path,) = self.ws.step(step_id, [a] + ([b] if b else []), config.to_dict(), run)
        self.ws.add("results", path)
        return path

    def _clean_adv(self, c: Comparison, protocol: Protocol) -> Path:
        ckpt = self.ws.checkpoint(c.a)
        attack = c.attack if c.a.model.kind == "snn" else replace(c.attack, grad="bptt")  # an ANN: its exact gradient
        name = f"{ckpt.stem}-{'-'.join(attack.methods)}-{attack.grad}"
        (store,) = self.ws.step(f"attack-{name}", [ckpt], attack.to_dict(), lambda: [run_attack(
            ckpt, attack, self.ws.where.into(self.ws.out / "attacks"), name=name).path])
        method = attack.methods[0] if len(attack.methods) == 1 else "worst"
        config = replace(self.recipe.cka, compare="clean-adv", layers=None if protocol.default is None
                         else (protocol.default,), time=protocol.time)
        step_id = f"clean-adv-{name}-{protocol.name}"
        paths = self.ws.step(step_id, [ckpt, store], config.to_dict(), lambda: [r.path for r in run_clean_adv(
            config, CKAInputs(model=ckpt, attack=store, method=method), self.ws.where, name=f"cka-{step_id}")])
        self.ws.add("results", store, *paths)
        if c.a.optim.seed == self.recipe.seeds[0] and store not in self.shown:
            self.shown.append(store)  # the page's robustness section
        return max(paths, key=lambda p: float(CKAResult.load(p).config.get("eps", 0.0)))

    def source(self, c: Comparison, protocol: Protocol) -> Source:
        path = self.cka(c, protocol)
        result = CKAResult.load(path)
        model = self._structure(c.a)
        return Source(result, path, tuple(b.name for b in model.blocks()),
                      tuple(model.block_places(list(result.layers_a))))

    # ------------------------------------------------------------------------- findings
    def finding(self, plan: FindingPlan) -> Finding:
        """Every estimate of one finding (each protocol and measure), then its sentence."""
        seeds, spec = self.recipe.seeds, plan.spec
        measure_fn = MEASURES[spec.measure]
        estimates: list[Estimate] = []
        files: list[Path] = []
        for name in self.recipe.protocols:
            protocol = PROTOCOLS[name]
            srcs = [{role: self.source(c.at(s), protocol) for role, c in plan.roles.items()} for s in seeds]
            files += [src.path for per in srcs for src in per.values()]
            self._remember(plan, protocol, srcs[0])
            labels, refs = self._references(plan, protocol)
            for measure in self.recipe.cka.measures:
                values = [measure_fn.fn(lambda role, per=per: per[role].result.of(measure), per) for per in srcs]
                reps = [replicates(lambda get, per=per: measure_fn.fn(get, per)["d"],
                                   {role: src.result for role, src in per.items()}, measure) for per in srcs]
                iv = interval([v["d"] for v in values], reps)
                estimates.append(estimate(spec, name, measure, iv, _mean_values(values),
                                          _reference_values(labels, refs, measure)))
        finding = make_finding(spec, estimates, seeds, list(dict.fromkeys(files)), plan.label, plan.words)
        self.ws.add("figures", *experiment_figures.forest(finding, spec.margin if spec.rule != "none" else None,
                                                         self.ws.out))
        return finding

    def _remember(self, plan: FindingPlan, protocol: Protocol, first: dict[str, Source]) -> None:
        for role, src in first.items():
            c = plan.roles[role]
            self._first.setdefault((c.title or role, protocol.name), (c, src.path))
            if src.path not in self.shown:
                self.shown.append(src.path)

    def _references(self, plan: FindingPlan, protocol: Protocol) -> tuple[dict[str, str], list[dict[str, Source]]]:
        """Labels and, per seed, the headline comparison's reference points: "a" and "b" each
        model against its twin of the next seed (none with one seed), "floor" model a against
        model b untrained."""
        role = MEASURES[plan.spec.measure].headline
        if role is None:
            return {}, []
        c = plan.roles[next(iter(plan.roles)) if role == "first" else role]
        seeds, out = self.recipe.seeds, []
        for i, s in enumerate(seeds):
            here = c.at(s)
            refs = {"headline": self.source(here, protocol), "floor": self.source(replace(here, b_untrained=True),
                                                                                  protocol)}
            if len(seeds) > 1:
                nxt = seeds[(i + 1) % len(seeds)]
                refs["a"] = self.source(Comparison("models", here.a, c.a.variant(seed=nxt)), protocol)
                refs["b"] = self.source(Comparison("models", here.b, c.b.variant(seed=nxt)), protocol)
                if i == 0:
                    self._ceiling_rows.setdefault((c.title, protocol.name), refs["a"].path)
            out.append(refs)
        return _labels(c), out

    # ------------------------------------------------------------------------- figures
    def draw_summaries(self, findings: list[Finding]) -> None:
        """Heatmaps of the first seed's comparisons and the recipe's summary figures."""
        self.ws.add("figures", *experiment_figures.heatmaps(self._first, self._ceiling_rows, self.ws.out))
        self.ws.add("figures", *experiment_figures.summaries(self.recipe.kind, self._first, self.ws.out))


def _mean_values(per_seed: list[dict]) -> dict:
    """Each named number averaged over the seeds that have it (None where none does)."""
    keys = list(dict.fromkeys(k for v in per_seed for k in v))
    out = {}
    for k in keys:
        vals = [v.get(k) for v in per_seed if isinstance(v.get(k), (int, float))]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def _labels(c: Comparison) -> dict[str, str]:
    """Names of the ceilings of comparison `c`: each model against its twin of another seed
    ("SNN-vs-SNN'"), by kind, or by kind and data where both models are of one kind."""
    def name(t: TrainConfig) -> str:
        same = c.b is not None and c.b.model.kind == c.a.model.kind
        return t.model.kind.upper() + (f" on {t.data.name}" if same else "")
    return {"a": f"{name(c.a)}-vs-{name(c.a)}'", "b": f"{name(c.b)}-vs-{name(c.b)}'"}


def _reference_values(labels: dict[str, str], refs: list[dict[str, Source]], measure: str) -> dict:
    """The headline similarity, ceilings and floor under `measure`, averaged over seeds."""
    if not refs:
        return {}

    def mean_of(key: str) -> float | None:
        vals = [mean_diagonal(r[key].result.of(measure), r[key]) for r in refs if key in r]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None

    ceiling = {labels[k]: mean_of(k) for k in ("a", "b") if k in refs[0]}
    return {"headline": mean_of("headline"), "ceiling": ceiling, "floor": mean_of("floor")}
