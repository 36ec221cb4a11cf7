"""Experiment findings: the JSON file one `suite experiment` run leaves in its output folder.

`experiment-<name>.json` holds everything a reader (the HTML page, a person) needs to see
what an experiment found and where it came from:

    format          "suite-experiment"
    schema_version  1
    recipe          the recipe's name ("temporal", or a copied recipe's own name)
    config          the recipe's settings as run (after command-line overrides)
    findings        one entry per finding, in the order printed:
        key         short identifier within the recipe ("deeper-layers-more-dynamic")
        sentence    the sentence printed: measured numbers, the paper's claim, the verdict
        measured    {name: number or null}: the numbers the sentence quotes, as fields
        claim       the paper's claim in the suite's words
        source      where the paper makes it ("Sec. 4.3, Fig. 6"), as verified
        rule        the decision rule, stated before measuring
        verdict     "agrees", "disagrees" or "inconclusive"
        files       the result files the numbers were read from
        estimates   (optional) d per protocol and similarity measure: {protocol, measure,
                    interval {per_seed, mean, lo, hi, how}, verdict, values, headline,
                    ceiling {label: value}, floor} (suite.experiments.findings)
        what        (optional) what d is, with the numbers it is the difference of
                    ("T=2: time-step CKA ... in the first block 0.91 vs the last 0.72 (d = last - first)")
        margin      (optional) the rule's margin (d's bounds are printed on its side of it)
    files           {"results": [...], "figures": [...], "checkpoints": [...]}
    provenance      {command, suite_version, torch_version, cuda_version, git_commit,
                     device, created}

File paths are stored relative to the findings file's folder (POSIX separators), so the
output folder can be moved or copied whole; `read_experiment` returns them resolved against
the file's folder. A number that could not be measured (CKA of a constant layer) is null.
The file is written atomically (suite.files.atomic_path).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.errors import SuiteError
from suite.files import atomic_path
from suite.results.provenance import ADDED_LATER, PROVENANCE_KEYS

FORMAT = "suite-experiment"
SCHEMA_VERSION = 1
VERDICTS = ("agrees", "disagrees", "inconclusive")
FILE_GROUPS = ("results", "figures", "checkpoints")


def experiment_filename(name: str) -> str:
    """`experiment-<name>.json`, the findings file of recipe `name`."""
    return f"experiment-{name}.json"


MAIN_ESTIMATE = ("suite", "linear-cka")  # the protocol and measure a finding's verdict rests on


@dataclass
class Finding:
    """One finding: the sentence printed, the numbers it quotes and how its verdict was decided."""

    key: str
    sentence: str
    measured: dict[str, float | int | None]
    claim: str
    source: str
    rule: str
    verdict: str
    files: list[Path] = field(default_factory=list)
    estimates: list[dict[str, Any]] = field(default_factory=list)
    what: str = ""  # what d is, in words with its numbers (files before it existed: "")
    margin: float | None = None  # the rule's margin (None: not recorded)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise SuiteError(f"finding {self.key!r}: verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")
        for name, value in self.measured.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise SuiteError(f"finding {self.key!r}: measured {name!r} is {value!r}, not a number")
            if isinstance(value, float) and not math.isfinite(value):
                self.measured[name] = None  # JSON has no NaN; null means "not measurable"


@dataclass
class Experiment:
    """A finished experiment as written to (or read from) `experiment-<name>.json`."""

    recipe: str
    config: dict[str, Any]
    findings: list[Finding]
    files: dict[str, list[Path]]
    provenance: dict[str, Any]
    path: Path | None = None  # where it was read from or written to


def _relative(p: Path | str, folder: Path) -> str:
    """`p` relative to `folder` when it lies below it, else its absolute path."""
    p, folder = Path(p).resolve(), folder.resolve()
    return (p.relative_to(folder) if p.is_relative_to(folder) else p).as_posix()


def write_experiment(folder: str | os.PathLike, experiment: Experiment) -> Path:
    """Write `folder/experiment-<recipe>.json` atomically; return its path."""
    folder = Path(folder)
    for group in experiment.files:
        if group not in FILE_GROUPS:
            raise SuiteError(f"experiment files group {group!r} is not one of {', '.join(FILE_GROUPS)}")
    missing = [k for k in PROVENANCE_KEYS if k not in experiment.provenance]
    if missing:
        raise SuiteError(f"experiment provenance lacks {', '.join(missing)}")
    payload = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "recipe": experiment.recipe,
        "config": experiment.config,
        "findings": [{
            "key": f.key, "sentence": f.sentence, "measured": f.measured, "claim": f.claim,
            "source": f.source, "rule": f.rule, "verdict": f.verdict,
            "files": [_relative(p, folder) for p in f.files], "estimates": _finite(f.estimates),
            "what": f.what, "margin": f.margin,
        } for f in experiment.findings],
        "files": {g: [_relative(p, folder) for p in experiment.files.get(g, [])] for g in FILE_GROUPS},
        "provenance": experiment.provenance,
    }
    text = json.dumps(payload, indent=2, allow_nan=False, default=str)
    path = folder / experiment_filename(experiment.recipe)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    experiment.path = path
    return path


def _finite(value: Any) -> Any:
    """`value` with every non-finite float as None (JSON has no NaN; null: not measurable)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise SuiteError(f"{where} lacks {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SuiteError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _margin(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SuiteError(f"{where}: 'margin' has the wrong type ({type(value).__name__})")
    return float(value)


def bound(x: float, margin: float | None) -> str:
    """An interval bound of d with two decimals, or as many more as it takes to keep it on its
    own side of +-margin: a verdict reads the unrounded bound, and -0.0496 printed as -0.05
    beside a margin of 0.05 would make "inconclusive" look like a misreading."""
    margins = () if margin is None else (margin, -margin)
    for places in (2, 3, 4, 6):
        text = f"{x:+.{places}f}"
        if all((float(text) > m, float(text) < m) == (x > m, x < m) for m in margins):
            break
    return text


def read_experiment(path: str | os.PathLike) -> Experiment:
    """Read and validate a findings file; every problem is one SuiteError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"file not found: {p}")
    try:
        payload = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{p} is not a JSON findings file ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SuiteError(f"{p} is not a suite experiment file (no '{FORMAT}' marker)")
    if payload.get("schema_version") != SCHEMA_VERSION:
        raise SuiteError(f"{p} has experiment schema version {payload.get('schema_version')}; "
                         f"this suite reads {SCHEMA_VERSION}")
    folder = p.parent
    where = str(p)
    recipe = _need(payload, "recipe", str, where)
    config = _need(payload, "config", dict, where)
    provenance = _need(payload, "provenance", dict, where)
    provenance = {**{k: None for k in ADDED_LATER}, **provenance}
    missing = [k for k in PROVENANCE_KEYS if k not in provenance]
    if missing:
        raise SuiteError(f"{p}: provenance lacks {', '.join(missing)}")
    files_raw = _need(payload, "files", dict, where)
    files: dict[str, list[Path]] = {}
    for group in FILE_GROUPS:
        entries = _need(files_raw, group, list, f"{where} files")
        if not all(isinstance(e, str) for e in entries):
            raise SuiteError(f"{p}: files {group!r} holds a non-string entry")
        files[group] = [folder / e for e in entries]
    findings = []
    for i, raw in enumerate(_need(payload, "findings", list, where)):
        at = f"{p} finding {i + 1}"
        measured = _need(raw, "measured", dict, at)
        paths = _need(raw, "files", list, at)
        if not all(isinstance(e, str) for e in paths):
            raise SuiteError(f"{at}: files holds a non-string entry")
        try:
            findings.append(Finding(
                key=_need(raw, "key", str, at), sentence=_need(raw, "sentence", str, at),
                measured=dict(measured), claim=_need(raw, "claim", str, at),
                source=_need(raw, "source", str, at), rule=_need(raw, "rule", str, at),
                verdict=_need(raw, "verdict", str, at), files=[folder / e for e in paths],
                estimates=list(raw.get("estimates", [])), what=str(raw.get("what", "")),
                margin=_margin(raw.get("margin"), at)))
        except SuiteError as exc:
            raise SuiteError(f"{p}: {exc}") from None
    return Experiment(recipe=recipe, config=config, findings=findings, files=files,
                      provenance=provenance, path=p)
