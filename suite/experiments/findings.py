"""Findings: the estimates of a finding's difference d (per protocol and similarity measure, over
seeds, with intervals, noise ceiling and floor), the paper's claim and a verdict, as one sentence.

The verdict comes from the recipe's rule applied to the interval of d under the suite's default
protocol and linear CKA (suite.experiments.intervals), never from the numbers being what someone
hoped. The sentence then says whether the other measures or the SNNCKA protocol disagree: a
verdict that turns from agrees to disagrees (or back), or a mean d that changes sign, between
measures is "measure-dependent", between protocols "protocol-dependent".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from suite.experiments.intervals import Interval, verdict
from suite.experiments.measures import MEASURES, Values, fmt
from suite.experiments.recipe import FindingSpec
from suite.results.experiment import MAIN_ESTIMATE, Finding, bound


@dataclass
class Estimate:
    """d of one finding under one protocol and one similarity measure: per seed, mean, interval
    and verdict; the named numbers averaged over seeds; for a two-model comparison its headline
    similarity, noise ceilings (each model against its twin of another seed) and floor (against
    an untrained twin), each averaged over seeds."""

    protocol: str
    measure: str
    interval: Interval
    verdict: str
    values: Values
    headline: float | None = None
    ceiling: dict[str, float | None] = field(default_factory=dict)
    floor: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = {**asdict(self.interval), "per_seed": list(self.interval.per_seed)}
        return d


def estimate(spec: FindingSpec, protocol: str, measure: str, interval: Interval, values: Values,
             reference: dict | None = None) -> Estimate:
    """An Estimate with its verdict by the spec's rule; `reference` the headline, ceiling and floor."""
    return Estimate(protocol, measure, interval, verdict(spec.rule, interval, spec.margin), values,
                    **(reference or {}))


def rule_text(spec: FindingSpec) -> str:
    """The rule in words, as stored beside the finding."""
    m = f"{spec.margin:g}"
    if spec.rule == "above":
        return f"agrees if the 95% interval of d lies above {m}, disagrees if below -{m}, else inconclusive"
    if spec.rule == "below":
        return f"agrees if the 95% interval of d lies below -{m}, disagrees if above {m}, else inconclusive"
    return "always inconclusive (no verified direction to test)"


def _d(e: Estimate, margin: float) -> str:
    iv = e.interval
    if iv.mean is None:
        return "d n/a"
    ci = f" [95% CI {bound(iv.lo, margin)}, {bound(iv.hi, margin)}]" if iv.lo is not None else " [no interval]"
    return f"d = {fmt(iv.mean, True)}{ci}"


def _reference(e: Estimate) -> str:
    """ '; headline 0.86 (ceiling SNN-vs-SNN' 0.93, ANN-vs-ANN' 0.95, floor 0.12)' or ''."""
    if e.headline is None and not e.ceiling and e.floor is None:
        return ""
    ceilings = ", ".join(f"{k} {fmt(v)}" for k, v in e.ceiling.items()) or "n/a (needs two seeds)"
    return f"; its two-model similarity {fmt(e.headline)} (ceiling {ceilings}, floor {fmt(e.floor)})"


def _flags(main: Estimate, others: list[Estimate], what: str) -> str:
    """' (measure-dependent: procrustes disagrees)' when a verdict or the sign of d flips."""
    def sign(e: Estimate) -> int:
        return 0 if e.interval.mean is None else (1 if e.interval.mean > 0 else -1 if e.interval.mean < 0 else 0)
    opposite = {"agrees": "disagrees", "disagrees": "agrees"}
    flips = [o for o in others if (main.verdict in opposite and o.verdict == opposite[main.verdict])
             or sign(o) * sign(main) < 0]
    if not flips:
        return ""
    label = "measure" if what == "measure" else "protocol"
    return f" ({label}-dependent: " + ", ".join(
        f"{getattr(o, what)} d {fmt(o.interval.mean, True)}, {o.verdict}" for o in flips) + ")"


def make_finding(spec: FindingSpec, estimates: list[Estimate], seeds: tuple[int, ...], files: list[Path],
                 label: str = "", words: str = "") -> Finding:
    """The finding: `words` (what tells it apart from the spec's other findings, "T=2"), the
    default estimate's numbers, interval and reference points, then d under the other measures
    and protocol, the claim, and the verdict with its flags."""
    main = next(e for e in estimates if (e.protocol, e.measure) == MAIN_ESTIMATE)
    per_seed = ", ".join(f"{fmt(d, True)}" for d in main.interval.per_seed)
    what = f"{words + ': ' if words else ''}{MEASURES[spec.measure].describe(main.values)}"
    head = (f"{what}: {_d(main, spec.margin)} over seeds {', '.join(map(str, seeds))} "
            f"(per seed {per_seed}; {main.interval.how}){_reference(main)}")
    same_protocol = [e for e in estimates if e.protocol == MAIN_ESTIMATE[0] and e is not main]
    others = [e for e in estimates if e.protocol != MAIN_ESTIMATE[0] and e.measure == MAIN_ESTIMATE[1]]
    parts = [head]
    if same_protocol:
        parts.append("under " + ", ".join(f"{e.measure} {_d(e, spec.margin)}" for e in same_protocol))
    parts += [f"under the {e.protocol} protocol {_d(e, spec.margin)}" for e in others]
    flags = _flags(main, same_protocol, "measure") + _flags(main, others, "protocol")
    sentence = "; ".join(parts) + f"; the paper ({spec.source}) {spec.claim}{flags}: {main.verdict}"
    mean_values = {**main.values, "d": main.interval.mean, "d_lo": main.interval.lo, "d_hi": main.interval.hi}
    return Finding(key=spec.key + label, sentence=sentence, measured=mean_values, claim=spec.claim,
                   source=spec.source, rule=f"{spec.rule}: {rule_text(spec)}", verdict=main.verdict,
                   files=files, estimates=[e.to_dict() for e in estimates], what=what,
                   margin=spec.margin)
