"""What each recipe compares: for every finding, the CKA comparisons it reads (its roles), each
given by the training runs of its models at the recipe's first seed; the runner moves them to
every seed and runs them under every protocol (suite.experiments.runner).

    temporal      per T: the SNN's time steps against each other
    residual      SNN vs ANN with and without residual connections; the SNN's block layers
                  against each other, with and without
    width-depth   SNN vs ANN along the depth series (base width) and the width series (base
                  arch); the base pair over the block layers (checkerboard)
    event         SNN vs ANN on images and on their event recordings; static vs event (SNNs)
    adversarial   clean vs adversarial input, SNN and ANN, at the attack's largest eps
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from suite.attacks.settings import AttackConfig
from suite.experiments.recipe import FindingSpec, Recipe
from suite.train import TrainConfig


@dataclass(frozen=True)
class Comparison:
    """One CKA comparison: what is compared (models, layers, time, static-event, clean-adv), the
    training runs of model a and b (b None: model a against itself, over time or on attacked
    inputs), which layers ("default" or "fine", the block layers; suite.experiments.protocols),
    the figure's title, for clean-adv the attack whose examples are compared, and whether model b
    is untrained."""

    compare: str
    a: TrainConfig
    b: TrainConfig | None = None
    layers: str = "default"
    title: str = ""
    attack: AttackConfig | None = None
    b_untrained: bool = False  # model b as its seed initialised it, never trained (the noise floor)

    def at(self, seed: int) -> "Comparison":
        """The same comparison between the models of another seed."""
        from dataclasses import replace

        return replace(self, a=self.a.variant(seed=seed), b=None if self.b is None else self.b.variant(seed=seed))


@dataclass(frozen=True)
class FindingPlan:
    """A finding and the comparisons it reads, by role (in the order its measure lists them).
    Where one spec gives several findings (temporal: one per T), `label` tells their keys apart
    ("-T2") and `words` their sentences, which start with them ("T=2")."""

    spec: FindingSpec
    roles: dict[str, Comparison]
    label: str = ""
    words: str = ""


def _snn(recipe: Recipe, **changes) -> TrainConfig:
    return recipe.train.variant(kind="snn", **changes)


def _ann(recipe: Recipe, **changes) -> TrainConfig:
    return recipe.train.variant(kind="ann", **changes)


def _twins(recipe: Recipe, title: str, layers: str = "default", **changes) -> Comparison:
    return Comparison("models", _snn(recipe, **changes), _ann(recipe, **changes), layers, title)


def temporal(recipe: Recipe, spec: FindingSpec) -> list[FindingPlan]:
    return [FindingPlan(spec, {"time": Comparison("time", _snn(recipe, timesteps=T), title=f"time-step CKA, T={T}")},
                        f"-T{T}", f"T={T}") for T in recipe.timesteps]


def residual(recipe: Recipe, spec: FindingSpec) -> list[FindingPlan]:
    if spec.measure == "residual-ann-likeness":
        return [FindingPlan(spec, {"with": _twins(recipe, "SNN vs ANN (residual)"),
                                   "without": _twins(recipe, "SNN vs ANN (no residual)", residual=False)})]
    return [FindingPlan(spec, {
        "with": Comparison("layers", _snn(recipe), layers="fine", title="SNN block layers (residual)"),
        "without": Comparison("layers", _snn(recipe, residual=False), layers="fine",
                              title="SNN block layers (no residual)")})]


def width_depth(recipe: Recipe, spec: FindingSpec) -> list[FindingPlan]:
    m = recipe.train.model
    if spec.measure == "checkerboard":
        return [FindingPlan(spec, {"grid": _twins(recipe, f"SNN vs ANN block layers: {m.arch}, width {m.width:g}",
                                                  "fine")})]
    if spec.measure == "diagonal-vs-depth":
        return [FindingPlan(spec, {a: _twins(recipe, f"SNN vs ANN: {a}, width {m.width:g}", arch=a)
                                   for a in recipe.grid.archs})]
    return [FindingPlan(spec, {f"width {w:g}": _twins(recipe, f"SNN vs ANN: {m.arch}, width {w:g}", width=w)
                               for w in recipe.grid.widths})]


def event(recipe: Recipe, spec: FindingSpec) -> list[FindingPlan]:
    static, ev = recipe.train.data.name, recipe.event_dataset
    if spec.measure.startswith("adv-"):  # the twins on events, attacked under the recipe's threat model
        return adversarial(recipe, spec, dataset=ev)
    if spec.measure == "event-vs-static":
        return [FindingPlan(spec, {"event": _twins(recipe, f"SNN vs ANN on {ev}", dataset=ev),
                                   "static": _twins(recipe, f"SNN vs ANN on {static}")})]
    return [FindingPlan(spec, {"pair": Comparison("static-event", _snn(recipe), _snn(recipe, dataset=ev),
                                                  title=f"static ({static}) vs event ({ev}), SNNs")})]


def adversarial(recipe: Recipe, spec: FindingSpec, **changes) -> list[FindingPlan]:
    """SNN and ANN twins (trained on `changes`' dataset, if given) attacked as [attack] says."""
    on = f" on {changes['dataset']}" if "dataset" in changes else ""
    return [FindingPlan(spec, {
        "snn": Comparison("clean-adv", _snn(recipe, **changes), title=f"clean vs adversarial CKA: SNN{on}",
                          attack=recipe.attack),
        "ann": Comparison("clean-adv", _ann(recipe, **changes), title=f"clean vs adversarial CKA: ANN{on}",
                          attack=recipe.attack)})]


PLANS: dict[str, Callable[[Recipe, FindingSpec], list[FindingPlan]]] = {
    "temporal": temporal, "residual": residual, "width-depth": width_depth, "event": event,
    "adversarial": adversarial,
}


def plan_findings(recipe: Recipe) -> list[FindingPlan]:
    """Every finding of `recipe` with the comparisons it reads, in the recipe's order."""
    return [plan for spec in recipe.findings for plan in PLANS[recipe.kind](recipe, spec)]
