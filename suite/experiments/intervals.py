"""How sure a finding is: its difference d per seed, the mean over seeds and a 95% interval that
covers both the seed-to-seed variation and, within a seed, the sample-to-sample variation; and
the verdict its rule reads off the interval.

Within a seed, d has a bootstrap over minibatches: each replicate redraws the minibatches of
every CKA result the finding reads (with replacement, independently per result) and computes
d again from the redrawn HSIC sums or per-batch values (`replicates`). Its spread is that
seed's standard error SE_s.

Across seeds (n >= 2) the interval is a t interval around the mean,

    mean_s d_s  +-  t(0.975, n - 1) * sqrt(max(var_s d_s, mean_s SE_s^2) / n),

the variance between seeds (which holds each seed's own sampling noise too) floored by the
within-seed variance, so that three seeds that agree by chance do not give a narrower interval
than their samples allow. With one seed the interval is the within-seed bootstrap's 2.5 and
97.5 percentiles.

Verdicts (the rule and margin come from the recipe): "above" agrees when the whole interval is
above +margin and disagrees when it is below -margin; "below" is the mirror image; anything
else, and rule "none", is inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from scipy import stats

from suite.cka.similarity import measure_from_batches
from suite.errors import SuiteError
from suite.results.cka import CKAResult

LEVEL = 0.95
REPLICATES = 200  # bootstrap replicates of d per seed: the SE of a spread to about 5%


def replicate_matrices(result: CKAResult, measure: str, n: int = REPLICATES, seed: int = 0) -> torch.Tensor:
    """`n` bootstrap replicates of `result`'s matrix under `measure`: [n, ...], each from its
    minibatches redrawn with replacement."""
    batches = result.batches.get(measure)
    if batches is None:
        raise SuiteError(f"the CKA result holds no per-batch values of {measure}: a bootstrap needs them")
    k = next(iter(batches.values())).shape[0]
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(k, (n, k), generator=g)
    counts = torch.zeros(n, k, dtype=torch.float64).scatter_add_(1, idx, torch.ones(n, k, dtype=torch.float64))
    return measure_from_batches(batches, counts)


def replicates(fn: Callable[[Callable[[str], torch.Tensor]], float | None], results: dict[str, CKAResult],
               measure: str, n: int = REPLICATES, seed: int = 0) -> list[float]:
    """d of each bootstrap replicate: `fn(get)` with `get(role)` the replicate's matrix of that
    role's result (every result redrawn independently); replicates where d is undefined dropped."""
    mats = {role: replicate_matrices(r, measure, n, seed + i) for i, (role, r) in enumerate(results.items())}
    out = []
    for k in range(n):
        d = fn(lambda role, k=k: mats[role][k])
        if d is not None and math.isfinite(d):
            out.append(float(d))
    return out


@dataclass(frozen=True)
class Interval:
    """d per seed, their mean and its 95% interval (module docstring)."""

    per_seed: tuple[float | None, ...]
    mean: float | None
    lo: float | None
    hi: float | None
    how: str  # "t over n seeds" or "bootstrap within one seed"


def interval(per_seed: Sequence[float | None], reps: Sequence[Sequence[float]], level: float = LEVEL) -> Interval:
    """The interval of the mean of d over seeds, from each seed's d and its bootstrap replicates."""
    pairs = [(d, r) for d, r in zip(per_seed, reps) if d is not None]
    n = len(pairs)
    if n == 0:
        return Interval(tuple(per_seed), None, None, None, "not measurable")
    ds = np.array([d for d, _ in pairs])
    mean = float(ds.mean())
    if n == 1:
        r = pairs[0][1]
        if len(r) < 2:
            return Interval(tuple(per_seed), mean, None, None, "bootstrap within one seed (too few replicates)")
        lo, hi = np.quantile(r, [(1 - level) / 2, 1 - (1 - level) / 2])
        return Interval(tuple(per_seed), mean, float(lo), float(hi), "bootstrap within one seed")
    within = float(np.mean([np.var(r, ddof=1) if len(r) > 1 else 0.0 for _, r in pairs]))
    spread = math.sqrt(max(float(np.var(ds, ddof=1)), within) / n)
    half = float(stats.t.ppf(1 - (1 - level) / 2, n - 1)) * spread
    return Interval(tuple(per_seed), mean, mean - half, mean + half, f"t over {n} seeds")


def verdict(rule: str, iv: Interval, margin: float) -> str:
    """agrees, disagrees or inconclusive, read off the interval (module docstring)."""
    if rule == "none" or iv.lo is None or iv.hi is None:
        return "inconclusive"
    if rule == "above":
        return "agrees" if iv.lo > margin else "disagrees" if iv.hi < -margin else "inconclusive"
    if rule == "below":
        return "agrees" if iv.hi < -margin else "disagrees" if iv.lo > margin else "inconclusive"
    raise SuiteError(f"unknown rule {rule!r}")
