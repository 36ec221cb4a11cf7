"""Findings: a measurement, the paper's claim and a verdict, as one sentence.

The verdict comes from the recipe's rule applied to the measured difference d, never from
the numbers being what someone hoped: "above" agrees when d > margin and disagrees when
d < -margin; "below" is its mirror image; both are inconclusive in between and when d could
not be measured; "none" is always inconclusive (a claim whose direction was not verified).
"""

from __future__ import annotations

from suite.errors import SuiteError
from suite.experiments.measures import Measurement
from suite.experiments.recipe import FindingSpec
from suite.results.experiment import Finding


def verdict(rule: str, d: float | None, margin: float) -> str:
    """agrees, disagrees or inconclusive, as the module docstring defines."""
    if rule == "none" or d is None:
        return "inconclusive"
    if rule == "above":
        return "agrees" if d > margin else "disagrees" if d < -margin else "inconclusive"
    if rule == "below":
        return "agrees" if d < -margin else "disagrees" if d > margin else "inconclusive"
    raise SuiteError(f"unknown rule {rule!r}")


def rule_text(spec: FindingSpec) -> str:
    """The rule in words, as stored beside the finding."""
    m = f"{spec.margin:g}"
    if spec.rule == "above":
        return f"agrees if d > {m}, disagrees if d < -{m}, else inconclusive"
    if spec.rule == "below":
        return f"agrees if d < -{m}, disagrees if d > {m}, else inconclusive"
    return "always inconclusive (no verified direction to test)"


def make_finding(spec: FindingSpec, measured: Measurement, suffix: str = "") -> Finding:
    """The finding of one measurement: numbers first, then the claim, then the verdict."""
    result = verdict(spec.rule, measured.d, spec.margin)
    sentence = f"{measured.text}; the paper ({spec.source}) {spec.claim}: {result}"
    return Finding(key=spec.key + suffix, sentence=sentence, measured=dict(measured.values), claim=spec.claim,
                   source=spec.source, rule=f"{spec.rule}: {rule_text(spec)}", verdict=result,
                   files=list(measured.files))
