"""Recipes: the TOML files that say what an experiment trains, compares and concludes.

A recipe is read with the standard library's `tomllib` from the package (`suite experiment
temporal`) or from a file (`suite experiment mine.toml`), checked key by key against the
schema below (an unknown section, key or value is one SuiteError naming the file and key),
and may be overridden from the command line (`--dataset`, `--arch`, ...). The shipped
recipes live in `suite/experiments/recipes/`; `recipe_text(name)` returns one to copy.

Sections (every key optional; a missing one takes the default shown by `DEFAULTS`):
    recipe, name, description   which steps run (KINDS), the output's name, one line
    [data]     dataset, size; event: event_dataset
    [train]    arch, width, timesteps (temporal: a list), epochs, batch_size, lr, seed,
               surrogate, tau, threshold
    [cka]      samples, batch_size
    [grid]     width-depth only: archs, widths
    [attack]   adversarial only: methods, eps, alpha, steps, samples, batch_size
    [[finding]]  key, measure (one of the kind's MEASURES), claim, source, rule, margin
    recipes    all only: the recipes to run, by name
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from suite.attacks.config import AttackConfig, parse_alpha, parse_eps
from suite.attacks.methods import METHODS
from suite.cka.jobs import event_partner
from suite.data import get_dataset_info
from suite.errors import SuiteError
from suite.models import SURROGATES, list_archs
from suite.settings import TRAIN

KINDS = ("width-depth", "residual", "temporal", "event", "adversarial", "all")
MEASURES = {
    "width-depth": ("checkerboard", "diagonal-vs-depth", "diagonal-vs-width"),
    "residual": ("residual-ann-likeness", "periodic-pattern"),
    "temporal": ("time-first-vs-last",),
    "event": ("event-vs-static", "static-vs-event"),
    "adversarial": ("adv-snn-vs-ann", "adv-first-vs-last"),
    "all": (),
}
RULES = ("above", "below", "none")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

# section -> key -> default (the type of the default is the key's type; lists hold one type)
DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"dataset": "digits", "size": 16, "event_dataset": ""},
    "train": {"arch": TRAIN.arch, "width": 0.5, "timesteps": TRAIN.timesteps, "epochs": 8,
              "batch_size": TRAIN.batch_size, "lr": TRAIN.lr, "seed": TRAIN.seed,
              "surrogate": TRAIN.surrogate, "tau": TRAIN.tau, "threshold": TRAIN.threshold},
    "cka": {"samples": 384, "batch_size": 128},
    "grid": {"archs": ["resnet20", "resnet38", "resnet56"], "widths": [0.25, 0.5, 1.0]},
    "attack": {"methods": ["pgd"], "eps": ["0", "2/255", "4/255", "8/255"], "alpha": "1/255",
               "steps": 10, "samples": 256, "batch_size": 128},
}
# sections and keys only some kinds take
_ONLY = {("grid", None): ("width-depth",), ("attack", None): ("adversarial",),
         ("data", "event_dataset"): ("event",)}
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


@dataclass
class Recipe:
    """A validated recipe: its kind, name, settings by section, findings and origin."""

    kind: str
    name: str
    description: str
    settings: dict[str, dict[str, Any]]
    findings: list[FindingSpec] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)  # kind "all"
    origin: str = ""  # the file or package recipe it came from
    overrides: dict[str, Any] = field(default_factory=dict)  # command-line changes (kind "all": for each recipe)

    def section(self, name: str) -> dict[str, Any]:
        return self.settings[name]

    def to_config(self) -> dict[str, Any]:
        """The recipe as run, for the findings file."""
        return {"recipe": self.kind, "name": self.name, "description": self.description,
                "origin": self.origin, "overrides": dict(self.overrides), **copy.deepcopy(self.settings),
                **({"recipes": list(self.recipes)} if self.kind == "all" else {}),
                "findings": [vars(f) for f in self.findings]}


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
    """Read, override and validate a recipe: a shipped name or a path to a .toml file."""
    text, origin = recipe_source(name_or_file)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"recipe {origin} is not valid TOML: {exc}") from None
    return parse_recipe(raw, origin, overrides)


def parse_recipe(raw: dict[str, Any], origin: str, overrides: dict[str, Any] | None = None) -> Recipe:
    """Validate the parsed TOML of a recipe (then apply command-line `overrides`)."""
    where = f"recipe {origin}"
    kind = raw.get("recipe")
    if kind not in KINDS:
        raise SuiteError(f"{where}: recipe = {kind!r} is not one of {', '.join(KINDS)}")
    top = {"recipe", "name", "description", "finding", "recipes"} | set(DEFAULTS)
    for key in raw:
        if key not in top:
            raise SuiteError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(top))})")
    name = _typed(raw.get("name", kind), str, where, "name")
    if not _NAME.match(name):
        raise SuiteError(f"{where}: name {name!r} must be lower-case letters, digits, '-' or '_'")
    description = _typed(raw.get("description", ""), str, where, "description")

    if kind == "all":
        extra = set(raw) - {"recipe", "name", "description", "recipes"}
        if extra:
            raise SuiteError(f"{where}: recipe 'all' takes only name, description and recipes; "
                             f"got {', '.join(sorted(extra))}")
        subs = _typed(raw.get("recipes", []), list, where, "recipes")
        shipped = [n for n in recipe_names() if n != "all"]
        for sub in subs:
            if sub not in shipped:
                raise SuiteError(f"{where}: recipes: unknown recipe {sub!r}; choose from {', '.join(shipped)}")
        if not subs:
            raise SuiteError(f"{where}: recipes is empty")
        for sub in subs:  # each with the overrides, so a bad one fails before any work
            load_recipe(sub, overrides)
        return Recipe(kind, name, description, {}, [], list(subs), origin, dict(overrides or {}))
    if "recipes" in raw:
        raise SuiteError(f"{where}: unknown key 'recipes' (only recipe 'all' takes it)")

    settings: dict[str, dict[str, Any]] = {}
    for section, defaults in DEFAULTS.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise SuiteError(f"{where}: [{section}] must be a table")
        if not _allowed(section, None, kind):
            if section in raw:
                raise SuiteError(f"{where}: section [{section}] does not apply to recipe {kind!r}")
            continue
        values = {}
        for key, default in defaults.items():
            if not _allowed(section, key, kind):
                if key in given:
                    raise SuiteError(f"{where}: [{section}] {key} does not apply to recipe {kind!r}")
                continue
            values[key] = given.get(key, default)
        for key in given:
            if key not in values:
                raise SuiteError(f"{where}: unknown key [{section}] {key} "
                                 f"(known: {', '.join(k for k in defaults if _allowed(section, k, kind))})")
        settings[section] = values
    if kind == "temporal" and "timesteps" not in raw.get("train", {}):
        settings["train"]["timesteps"] = [2, 4, 8]
    if kind == "event" and not settings["data"]["event_dataset"]:
        settings["data"]["event_dataset"] = event_partner(settings["data"]["dataset"])
    for key, value in (overrides or {}).items():
        _override(settings, kind, key, value)
    _check_settings(settings, kind, where)

    findings = []
    for i, entry in enumerate(_typed(raw.get("finding", []), list, where, "finding")):
        findings.append(_finding(entry, kind, f"{where}: finding {i + 1}"))
    keys = [f.key for f in findings]
    if len(set(keys)) != len(keys):
        raise SuiteError(f"{where}: two findings share a key")
    return Recipe(kind, name, description, settings, findings, [], origin, dict(overrides or {}))


def parse_timesteps(text: str) -> list[int]:
    """--timesteps "2,4,8" -> [2, 4, 8] (positive whole numbers)."""
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise SuiteError(f"--timesteps {text!r} is not a whole number or a list like 2,4,8") from None
    if not values or min(values) < 1:
        raise SuiteError(f"--timesteps {text!r} must list positive whole numbers")
    return values


def _allowed(section: str, key: str | None, kind: str) -> bool:
    kinds = _ONLY.get((section, key))
    return kinds is None or kind in kinds


def _override(settings: dict, kind: str, key: str, value: Any) -> None:
    """Apply one command-line override (dataset, arch, epochs, timesteps, width)."""
    if key == "dataset":
        settings["data"]["dataset"] = value
        if kind == "event":
            settings["data"]["event_dataset"] = event_partner(value)
    elif key == "timesteps":
        values = list(value)
        if kind != "temporal" and len(values) != 1:
            raise SuiteError(f"--timesteps takes one value for recipe {kind!r}; got {len(values)}")
        settings["train"]["timesteps"] = values if kind == "temporal" else values[0]
    elif key in ("arch", "epochs", "width"):
        settings["train"][key] = value
    else:
        raise SuiteError(f"unknown recipe override {key!r}")


def _typed(value: Any, kind: type, where: str, key: str) -> Any:
    """`value` if it has type `kind` (an int is a float too; a bool is no number)."""
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise SuiteError(f"{where}: {key} = {value!r} should be {_TYPE_WORDS.get(kind, kind.__name__)}")
    return value


_TYPE_WORDS = {int: "a whole number", float: "a number", str: "text", list: "a list", bool: "true or false"}


def _check_settings(settings: dict, kind: str, where: str) -> None:
    """Types from DEFAULTS, then the values themselves (names exist, numbers in range)."""
    if "attack" in settings:  # eps and alpha may be written as numbers or as text like "8/255"
        attack = settings["attack"]
        if isinstance(attack["eps"], list):
            attack["eps"] = [str(e) if isinstance(e, (int, float)) and not isinstance(e, bool) else e
                             for e in attack["eps"]]
        if isinstance(attack["alpha"], (int, float)) and not isinstance(attack["alpha"], bool):
            attack["alpha"] = str(attack["alpha"])
    for section, values in settings.items():
        for key, value in values.items():
            default = DEFAULTS[section][key]
            at = f"[{section}] {key}"
            if kind == "temporal" and (section, key) == ("train", "timesteps"):
                default = [1]
            if isinstance(default, list):
                _typed(value, list, where, at)
                if not value:
                    raise SuiteError(f"{where}: {at} is empty")
                item_type = type(default[0])
                values[key] = [_typed(v, item_type, where, at) for v in value]
            else:
                values[key] = _typed(value, type(default), where, at)
    data, train, cka = settings["data"], settings["train"], settings["cka"]
    _positive(where, "[data] size", data["size"], minimum=4)
    info = _dataset(where, "[data] dataset", data["dataset"])
    if info.kind != "static":
        raise SuiteError(f"{where}: [data] dataset {data['dataset']!r} is event data; recipes start from "
                         f"static images (the event recipe takes [data] event_dataset)")
    if kind == "event":
        ev = _dataset(where, "[data] event_dataset", data["event_dataset"])
        if ev.kind != "event":
            raise SuiteError(f"{where}: [data] event_dataset {data['event_dataset']!r} is not event data")
    archs = [train["arch"]] + (settings["grid"]["archs"] if "grid" in settings else [])
    for arch in archs:
        if arch not in list_archs():
            raise SuiteError(f"{where}: architecture {arch!r} is unknown; choose from {', '.join(list_archs())}")
    if kind in ("residual", "width-depth") and not all(a.startswith("resnet") for a in archs):
        raise SuiteError(f"{where}: recipe {kind!r} compares conv/LIF layers of residual blocks; "
                         f"it needs ResNet architectures, got {', '.join(archs)}")
    widths = [train["width"]] + (settings["grid"]["widths"] if "grid" in settings else [])
    for w in widths:
        _positive(where, "width", w)
    steps = train["timesteps"] if isinstance(train["timesteps"], list) else [train["timesteps"]]
    for t in steps:
        _positive(where, "[train] timesteps", t, minimum=1)
    for key in ("epochs", "batch_size"):
        _positive(where, f"[train] {key}", train[key], minimum=1)
    _positive(where, "[train] lr", train["lr"])
    _positive(where, "[train] tau", train["tau"])
    _positive(where, "[train] threshold", train["threshold"])
    if train["seed"] < 0:
        raise SuiteError(f"{where}: [train] seed must be >= 0")
    if train["surrogate"] not in SURROGATES:
        raise SuiteError(f"{where}: [train] surrogate {train['surrogate']!r} is unknown; "
                         f"choose from {', '.join(SURROGATES)}")
    _positive(where, "[cka] samples", cka["samples"], minimum=4)
    _positive(where, "[cka] batch_size", cka["batch_size"], minimum=4)
    if "attack" in settings:
        attack = settings["attack"]
        for m in attack["methods"]:
            if m not in METHODS:
                raise SuiteError(f"{where}: [attack] methods: unknown method {m!r}; choose from {', '.join(METHODS)}")
        try:
            attack_config(attack, seed=train["seed"])
        except SuiteError as exc:
            raise SuiteError(f"{where}: [attack] {exc}") from None
        for key in ("steps", "samples", "batch_size"):
            _positive(where, f"[attack] {key}", attack[key], minimum=1)


def attack_config(attack: dict[str, Any], seed: int) -> AttackConfig:
    """The AttackConfig of an [attack] section (eps and alpha parsed from their text), BPTT for SNNs."""
    return AttackConfig(methods=tuple(attack["methods"]), eps=parse_eps(",".join(attack["eps"])),
                        alpha=parse_alpha(attack["alpha"]), steps=attack["steps"], samples=attack["samples"],
                        batch_size=attack["batch_size"], grad="bptt", seed=seed)


def _dataset(where: str, key: str, name: str):
    try:
        return get_dataset_info(name)
    except SuiteError as exc:
        raise SuiteError(f"{where}: {key}: {exc}") from None


def _positive(where: str, key: str, value: float, minimum: float | None = None) -> None:
    if minimum is not None and value < minimum:
        raise SuiteError(f"{where}: {key} must be at least {minimum:g}, got {value:g}")
    if not value > 0:
        raise SuiteError(f"{where}: {key} must be positive, got {value:g}")


def _finding(entry: Any, kind: str, where: str) -> FindingSpec:
    if not isinstance(entry, dict):
        raise SuiteError(f"{where} must be a table")
    for key in entry:
        if key not in _FINDING_KEYS:
            raise SuiteError(f"{where}: unknown key {key!r} (known: {', '.join(_FINDING_KEYS)})")
    for key in ("key", "measure", "claim", "source", "rule"):
        if key not in entry:
            raise SuiteError(f"{where}: missing key {key!r}")
        _typed(entry[key], str, where, key)
    if entry["measure"] not in MEASURES[kind]:
        raise SuiteError(f"{where}: measure {entry['measure']!r} is not one of recipe {kind!r}'s: "
                         f"{', '.join(MEASURES[kind])}")
    if entry["rule"] not in RULES:
        raise SuiteError(f"{where}: rule {entry['rule']!r} is not one of {', '.join(RULES)}")
    margin = _typed(entry.get("margin", 0.0), float, where, "margin")
    if entry["rule"] != "none" and "margin" not in entry:
        raise SuiteError(f"{where}: rule {entry['rule']!r} needs a margin")
    if margin < 0:
        raise SuiteError(f"{where}: margin must be >= 0, got {margin:g}")
    return FindingSpec(entry["key"], entry["measure"], entry["claim"], entry["source"], entry["rule"], margin)
