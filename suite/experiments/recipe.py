"""Recipes: the TOML files that say what an experiment trains, compares and concludes.

A recipe is read with the standard library's `tomllib` from the package (`suite experiment
temporal`) or from a file (`suite experiment mine.toml`). Each section parses straight into the
config of the command it describes, so a recipe's checks are the command's checks: [data] and
[train] into a `TrainConfig` (its `DataSpec`, `ModelSpec` and `Optimisation`), [cka] into a
`CKAConfig`, [attack] into an `AttackConfig`. What the recipe itself adds is checked here: known
sections and keys, the kinds each applies to, and the findings. Every problem is one SuiteError
naming the file and the section. The shipped recipes live in `suite/experiments/recipes/`;
`recipe_text(name)` returns one to copy; command-line overrides (`--dataset`, `--arch`, ...)
change the TOML values before they are parsed.

Sections (every key optional; a missing one takes the recipe default in `DEFAULTS`, else the
command's default):

    recipe, name, description   which steps run (KINDS), the output's name, one line
    seeds      the training seeds, every model trained once per seed (default 0, 1, 2)
    protocol   "suite", "snncka" or both (the default): how layers are read
               (suite.experiments.protocols); every finding runs under each
    [data]     dataset, size; event: event_dataset
    [train]    arch, width, timesteps (temporal: a list), epochs, batch_size, lr, surrogate,
               tau, threshold
    [cka]      samples, batch_size, measures (default every one of suite.cka.similarity)
    [grid]     width-depth only: archs, widths
    [attack]   adversarial only: methods, grad (the SNN's), eps, alpha, steps, iterations,
               samples, batch_size
    [[finding]]  key, measure (one of the kind's MEASURES), claim, source, rule, margin
    recipes    all only: the recipes to run, by name
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from suite.attacks.settings import AttackConfig
from suite.cka.settings import CKAConfig
from suite.cka.similarity import MEASURES as MEASURE_NAMES
from suite.experiments.protocols import PROTOCOLS
from suite.data import DataSpec, get_dataset_info
from suite.data.paired import event_partner
from suite.errors import SuiteError
from suite.models import ModelSpec
from suite.train import Optimisation, TrainConfig, train_data
from suite.values import check_choice, check_real, check_text, check_whole, parse_fraction

KINDS = ("width-depth", "residual", "temporal", "event", "adversarial", "all")
MEASURES = {
    "width-depth": ("checkerboard", "diagonal-vs-depth", "diagonal-vs-width"),
    "residual": ("residual-ann-likeness", "periodic-pattern"),
    "temporal": ("time-first-vs-last",),
    "event": ("event-vs-static", "static-vs-event", "adv-snn-vs-ann", "adv-first-vs-last"),
    "adversarial": ("adv-snn-vs-ann", "adv-first-vs-last"),
    "all": (),
}
RULES = ("above", "below", "none")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MAX_MARGIN = 2.0  # a CKA difference lies in [-2, 2]
MAX_SEED = 2**63 - 1
DEFAULT_SEEDS = (0, 1, 2)  # three trainings per model: seed-to-seed variation for every finding

# Each section's keys and the recipe defaults that differ from the commands' (small enough for
# 2 CPU cores); a key without a default here takes its command's default.
KEYS: dict[str, tuple[str, ...]] = {
    "data": ("dataset", "size", "event_dataset"),
    "train": ("arch", "width", "timesteps", "epochs", "batch_size", "lr", "surrogate", "tau", "threshold"),
    "cka": ("samples", "batch_size", "measures"),
    "grid": ("archs", "widths"),
    "attack": ("methods", "grad", "eps", "alpha", "steps", "iterations", "samples", "batch_size", "threat", "events",
               "max_shift"),
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"dataset": "digits", "size": 16},
    "train": {"width": 0.5, "epochs": 8},
    "cka": {"samples": 512, "batch_size": 64, "measures": list(MEASURE_NAMES)},
    "grid": {"archs": ["resnet20", "resnet38", "resnet56"], "widths": [0.25, 0.5, 1.0]},
    "attack": {"methods": ["sa-pgd"], "grad": "assg", "eps": ["0", "2/255", "4/255", "8/255"], "alpha": "1/255",
               "steps": 10, "iterations": 50, "samples": 256, "batch_size": 128},
}
# the event recipe's [attack]: the event threat model (suite.attacks.event_threat), its budgets in
# events per sample, on fewer samples (the greedy attack's reductions cost forward passes)
EVENT_ATTACK_DEFAULTS = {"threat": "events", "methods": ["event-pgd", "event-sparse", "event-random"],
                         "grad": "assg", "events": [0, 10, 50], "steps": 10, "samples": 64, "batch_size": 64}
# sections and keys only some kinds take
_ONLY = {("grid", None): ("width-depth",), ("attack", None): ("adversarial", "event"),
         ("data", "event_dataset"): ("event",),
         **{("attack", k): ("adversarial",) for k in ("eps", "alpha", "iterations")},
         **{("attack", k): ("event",) for k in ("threat", "events", "max_shift")}}
_MODEL_KEYS = ("arch", "width", "timesteps", "surrogate", "tau", "threshold")
_OPTIM_KEYS = ("epochs", "batch_size", "lr")
_FINDING_KEYS = ("key", "measure", "claim", "source", "rule", "margin")


@dataclass(frozen=True)
class FindingSpec:
    """How one finding is measured and judged: `measure` computes a difference d from result
    files; `rule` turns d into a verdict (above: agrees if d > margin, disagrees if d < -margin;
    below: the mirror image; none: always inconclusive)."""

    key: str
    measure: str
    claim: str
    source: str
    rule: str
    margin: float = 0.0


@dataclass(frozen=True)
class Grid:
    """width-depth: the depth series (architectures at the base width) and the width series
    (widths at the base architecture)."""

    archs: tuple[str, ...]
    widths: tuple[float, ...]


@dataclass(frozen=True)
class Recipe:
    """A checked recipe: its kind and name, the base training run (an SNN of the recipe's data
    and model; its twins and series are `TrainConfig.variant`s of it), the CKA sampling and what
    only some kinds take."""

    kind: str
    name: str
    description: str
    train: TrainConfig | None = None  # None for kind "all"
    cka: CKAConfig | None = None
    timesteps: tuple[int, ...] = ()  # temporal: one SNN per T; else the base T
    seeds: tuple[int, ...] = (0,)  # every model is trained once per seed; the first is `train`'s
    protocols: tuple[str, ...] = tuple(PROTOCOLS)  # suite.experiments.protocols
    grid: Grid | None = None  # width-depth
    attack: AttackConfig | None = None  # adversarial
    event_dataset: str | None = None  # event
    findings: tuple[FindingSpec, ...] = ()
    recipes: tuple[str, ...] = ()  # kind "all"
    origin: str = ""  # the file or package recipe it came from
    overrides: dict[str, Any] = field(default_factory=dict)  # command-line changes (kind "all": for each recipe)

    def to_config(self) -> dict[str, Any]:
        """The recipe as run, for the findings file."""
        head = {"recipe": self.kind, "name": self.name, "description": self.description, "origin": self.origin,
                "overrides": dict(self.overrides), "seeds": list(self.seeds), "protocol": list(self.protocols)}
        if self.kind == "all":
            return {**head, "recipes": list(self.recipes)}
        t = self.train
        sections: dict[str, Any] = {
            "data": {"dataset": t.data.name, "size": t.data.size,
                     **({"event_dataset": self.event_dataset} if self.event_dataset else {})},
            "train": {**{k: getattr(t.model, k) for k in _MODEL_KEYS}, **{k: getattr(t.optim, k) for k in _OPTIM_KEYS},
                      "timesteps": list(self.timesteps) if self.kind == "temporal" else t.model.timesteps},
            "cka": {"samples": self.cka.samples, "batch_size": self.cka.batch_size,
                    "measures": list(self.cka.measures)},
        }
        if self.grid is not None:
            sections["grid"] = {"archs": list(self.grid.archs), "widths": list(self.grid.widths)}
        if self.attack is not None:
            sections["attack"] = self.attack.to_dict()
        return {**head, **sections, "findings": [asdict(f) for f in self.findings]}


def recipe_names() -> list[str]:
    """The recipes shipped with the suite."""
    folder = resources.files("suite.experiments") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def recipe_text(name: str) -> str:
    """The TOML text of a shipped recipe (to copy and edit)."""
    if name not in recipe_names():
        raise SuiteError(f"unknown experiment {name!r}; choose one of: {', '.join(recipe_names())}, "
                         f"or give a recipe file (.toml)")
    return (resources.files("suite.experiments") / "recipes" / f"{name}.toml").read_text(encoding="utf-8")


def recipe_source(name_or_file: str | Path) -> tuple[str, str]:
    """The TOML text of a recipe and where it came from: a shipped name or a .toml file."""
    text_name = str(name_or_file)
    if not (text_name.endswith(".toml") or Path(text_name).is_file()):
        return recipe_text(text_name), f"{text_name} (shipped)"
    path = Path(text_name)
    if not path.is_file():
        raise SuiteError(f"recipe file not found: {path}")
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read recipe {path}: {exc}") from None


def load_recipe(name_or_file: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read, override and check a recipe: a shipped name or a path to a .toml file."""
    text, origin = recipe_source(name_or_file)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"recipe {origin} is not valid TOML: {exc}") from None
    return parse_recipe(raw, origin, overrides)


def parse_recipe(raw: dict[str, Any], origin: str, overrides: dict[str, Any] | None = None) -> Recipe:
    """Check the parsed TOML of a recipe, apply command-line `overrides`, and parse each section
    into its command's config."""
    where = f"recipe {origin}"
    overrides = dict(overrides or {})
    kind, name, description = _head(raw, where)
    if kind == "all":
        return _parse_all(raw, where, name, description, origin, overrides)
    if "recipes" in raw:
        raise SuiteError(f"{where}: unknown key 'recipes' (only recipe 'all' takes it)")
    sections = _sections(raw, kind, where)
    top = {"seeds": raw.get("seeds", list(DEFAULT_SEEDS)), "protocol": raw.get("protocol", list(PROTOCOLS))}
    for key, value in overrides.items():
        if key in top:
            top[key] = value
        else:
            _override(sections, kind, key, value)
    try:
        seeds, protocols = _seeds(top["seeds"]), _protocols(top["protocol"])
        parsed = _parse_sections(sections, kind, seeds[0])
    except SuiteError as exc:
        raise SuiteError(f"{where}: {exc}") from None
    parsed.update(seeds=seeds, protocols=protocols)
    findings = tuple(_finding(entry, kind, f"{where}: finding {i + 1}")
                     for i, entry in enumerate(_list(raw.get("finding", []), where, "finding")))
    keys = [f.key for f in findings]
    if len(set(keys)) != len(keys):
        raise SuiteError(f"{where}: two findings share a key")
    return Recipe(kind, name, description, findings=findings, origin=origin, overrides=overrides, **parsed)


def _seeds(value: Any) -> tuple[int, ...]:
    """The training seeds: a list of distinct whole numbers, each a valid --seed."""
    if not isinstance(value, list) or not value:
        raise SuiteError(f"seeds = {value!r} should be a non-empty list of whole numbers")
    for seed in value:
        check_whole(seed, "seed", 0, MAX_SEED)
    if len(set(value)) != len(value):
        raise SuiteError(f"seeds {value!r} names a seed twice")
    return tuple(value)


def _protocols(value: Any) -> tuple[str, ...]:
    """"suite", "snncka" or a list of them (suite.experiments.protocols)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise SuiteError(f"protocol = {value!r} should be a name or a non-empty list of names")
    for name in names:
        check_choice(name, "protocol", PROTOCOLS)
    if len(set(names)) != len(names):
        raise SuiteError(f"protocol {value!r} names a protocol twice")
    return tuple(names)


def _head(raw: dict[str, Any], where: str) -> tuple[str, str, str]:
    """The recipe's kind, name and description; unknown top-level keys refused."""
    kind = raw.get("recipe")
    if kind not in KINDS:
        raise SuiteError(f"{where}: recipe = {kind!r} is not one of {', '.join(KINDS)}")
    top = {"recipe", "name", "description", "finding", "recipes", "seeds", "protocol"} | set(KEYS)
    for key in raw:
        if key not in top:
            raise SuiteError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(top))})")
    name, description = raw.get("name", kind), raw.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise SuiteError(f"{where}: {key} = {value!r} should be text")
    if not _NAME.match(name):
        raise SuiteError(f"{where}: name {name!r} must be lower-case letters, digits, '-' or '_'")
    return kind, name, description


def _parse_all(raw, where, name, description, origin, overrides) -> Recipe:
    """Recipe "all": the shipped recipes it runs, each loaded with the overrides, so a bad one
    fails before any work."""
    extra = set(raw) - {"recipe", "name", "description", "recipes"}
    if extra:
        raise SuiteError(f"{where}: recipe 'all' takes only name, description and recipes; "
                         f"got {', '.join(sorted(extra))}")
    subs = _list(raw.get("recipes", []), where, "recipes")
    shipped = [n for n in recipe_names() if n != "all"]
    for sub in subs:
        if sub not in shipped:
            raise SuiteError(f"{where}: recipes: unknown recipe {sub!r}; choose from {', '.join(shipped)}")
    if not subs:
        raise SuiteError(f"{where}: recipes is empty")
    for sub in subs:
        load_recipe(sub, overrides)
    return Recipe("all", name, description, recipes=tuple(subs), origin=origin, overrides=overrides)


def _list(value: Any, where: str, key: str) -> list:
    if not isinstance(value, list):
        raise SuiteError(f"{where}: {key} = {value!r} should be a list")
    return value


def _applies(section: str, key: str | None, kind: str) -> bool:
    kinds = _ONLY.get((section, key))
    return kinds is None or kind in kinds


def _sections(raw: dict[str, Any], kind: str, where: str) -> dict[str, dict[str, Any]]:
    """Each section of `kind` as given, over the recipe defaults; keys checked by name."""
    sections = {}
    for section, keys in KEYS.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise SuiteError(f"{where}: [{section}] must be a table")
        if not _applies(section, None, kind):
            if section in raw:
                raise SuiteError(f"{where}: section [{section}] does not apply to recipe {kind!r}")
            continue
        known = [k for k in keys if _applies(section, k, kind)]
        for key in given:
            if key in keys and key not in known:
                raise SuiteError(f"{where}: [{section}] {key} does not apply to recipe {kind!r}")
            if key not in keys:
                raise SuiteError(f"{where}: unknown key [{section}] {key} (known: {', '.join(known)})")
        defaults = EVENT_ATTACK_DEFAULTS if (section, kind) == ("attack", "event") else DEFAULTS[section]
        sections[section] = {**{k: v for k, v in defaults.items() if k in known}, **given}
    if kind == "temporal":
        sections["train"].setdefault("timesteps", [2, 4, 8])
    return sections


def _override(sections: dict, kind: str, key: str, value: Any) -> None:
    """Apply one command-line override (dataset, arch, epochs, timesteps, width) to the TOML
    values; they are parsed and checked with the rest."""
    if key == "dataset":
        sections["data"]["dataset"] = value
        sections["data"].pop("event_dataset", None)
    elif key == "timesteps":
        values = list(value)
        if kind != "temporal" and len(values) != 1:
            raise SuiteError(f"--timesteps takes one value for recipe {kind!r}; got {len(values)}")
        sections["train"]["timesteps"] = values if kind == "temporal" else values[0]
    elif key in ("arch", "epochs", "width"):
        sections["train"][key] = value
    else:
        raise SuiteError(f"unknown recipe override {key!r}")


def _parse_sections(sections: dict[str, dict[str, Any]], kind: str, seed: int) -> dict[str, Any]:
    """The sections as configs (each check is its config's; errors name the section)."""
    data, train = sections["data"], sections["train"]
    timesteps = train.get("timesteps", ModelSpec().timesteps)
    if kind == "temporal":
        timesteps = timesteps if isinstance(timesteps, list) else [timesteps]
        if not timesteps:
            raise SuiteError("[train] timesteps is empty")
    elif isinstance(timesteps, list):
        raise SuiteError(f"[train] timesteps takes one value for recipe {kind!r}; got {timesteps!r}")
    steps = tuple(timesteps) if isinstance(timesteps, list) else (timesteps,)
    model = _section("train", lambda: ModelSpec(**{k: train[k] for k in _MODEL_KEYS if k in train and k != "timesteps"},
                                                timesteps=steps[0]))
    optim = _section("train", lambda: Optimisation(**{k: train[k] for k in _OPTIM_KEYS if k in train}, seed=seed))
    spec = _section("data", lambda: train_data(data["dataset"], model, size=data.get("size"), seed=optim.seed))
    base = TrainConfig(data=spec, model=model, optim=optim)
    if get_dataset_info(base.data.name).kind != "static":
        raise SuiteError(f"[data] dataset {base.data.name!r} is event data; recipes start from static images "
                         f"(the event recipe takes [data] event_dataset)")
    out: dict[str, Any] = {"train": base, "timesteps": steps,
                           "cka": _section("cka", lambda: _cka(sections["cka"], base.optim.seed))}
    for T in steps[1:]:
        _section("train", lambda: base.variant(timesteps=T))
    if kind == "event":
        out["event_dataset"] = data.get("event_dataset") or event_partner(base.data.name)
        _section("data", lambda: _event_data(base, out["event_dataset"]))
    if kind == "width-depth":
        out["grid"] = _section("grid", lambda: _grid(base, sections["grid"]))
    if kind in ("adversarial", "event"):
        out["attack"] = _section("attack", lambda: _attack(sections["attack"], base.optim.seed))
    if kind in ("residual", "width-depth"):
        archs = [base.model.arch, *(out["grid"].archs if "grid" in out else ())]
        if not all(a.startswith("resnet") for a in archs):
            raise SuiteError(f"recipe {kind!r} compares conv/LIF layers of residual blocks; it needs ResNet "
                             f"architectures, got {', '.join(archs)}")
    return out


def _section(name: str, build):
    """`build()`, its SuiteError named by the section it checks."""
    try:
        return build()
    except SuiteError as exc:
        raise SuiteError(f"[{name}] {exc}") from None


def _cka(cka: dict[str, Any], seed: int) -> CKAConfig:
    measures = cka.get("measures", ["linear-cka"])
    if not isinstance(measures, list):
        raise SuiteError(f"measures = {measures!r} should be a list")
    return CKAConfig(seed=seed, **{**cka, "measures": tuple(measures)})


def _event_data(base: TrainConfig, name: str) -> DataSpec:
    if get_dataset_info(name).kind != "event":
        raise SuiteError(f"event_dataset {name!r} is not event data")
    return base.variant(dataset=name).data


def _grid(base: TrainConfig, grid: dict[str, Any]) -> Grid:
    """The series, each entry checked as the model it trains."""
    archs, widths = grid["archs"], grid["widths"]
    for key, values in (("archs", archs), ("widths", widths)):
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{key} must be a non-empty list, got {values!r}")
    for arch in archs:
        base.variant(arch=arch)
    for width in widths:
        base.variant(width=width)
    return Grid(tuple(archs), tuple(float(w) for w in widths))


def _attack(attack: dict[str, Any], seed: int) -> AttackConfig:
    """An [attack] section: eps and alpha as numbers or as text like "8/255"; `grad` is the SNN's
    (an ANN is attacked through its exact gradient); `events` the event recipe's budgets."""
    def fraction(value: Any, key: str) -> Any:
        return parse_fraction(value, key) if isinstance(value, str) else value

    for key in ("eps", "methods", "events"):
        if key in attack and not isinstance(attack[key], list):
            raise SuiteError(f"{key} = {attack[key]!r} should be a list")
    values = {k: v for k, v in attack.items() if k not in ("eps", "alpha", "methods", "events")}
    if "eps" in attack:
        values["eps"] = tuple(fraction(e, "eps") for e in attack["eps"])
    if "alpha" in attack:
        values["alpha"] = fraction(attack["alpha"], "alpha")
    return AttackConfig(methods=tuple(attack["methods"]), events=tuple(attack.get("events", ())), seed=seed, **values)


def _finding(entry: Any, kind: str, where: str) -> FindingSpec:
    if not isinstance(entry, dict):
        raise SuiteError(f"{where} must be a table")
    for key in entry:
        if key not in _FINDING_KEYS:
            raise SuiteError(f"{where}: unknown key {key!r} (known: {', '.join(_FINDING_KEYS)})")
    try:
        for key in ("key", "measure", "claim", "source", "rule"):
            if key not in entry:
                raise SuiteError(f"missing key {key!r}")
            check_text(entry[key], key)
        if entry["measure"] not in MEASURES[kind]:
            raise SuiteError(f"measure {entry['measure']!r} is not one of recipe {kind!r}'s: "
                             f"{', '.join(MEASURES[kind])}")
        check_choice(entry["rule"], "rule", RULES)
        if entry["rule"] != "none" and "margin" not in entry:
            raise SuiteError(f"rule {entry['rule']!r} needs a margin")
        margin = entry.get("margin", 0.0)
        check_real(margin, "margin", 0.0, MAX_MARGIN)
    except SuiteError as exc:
        raise SuiteError(f"{where}: {exc}") from None
    return FindingSpec(entry["key"], entry["measure"], entry["claim"], entry["source"], entry["rule"], float(margin))
