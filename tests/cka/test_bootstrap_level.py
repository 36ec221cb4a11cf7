"""The bootstrap interval's level against a known distribution.

`MinibatchCKA.bootstrap_ci` resamples minibatches: a replicate draws k of the kept per-batch
HSIC values with replacement and forms CKA = sum HSIC(a, b) / sqrt(sum HSIC(a, a) sum HSIC(b, b)).
With the self-HSIC of every batch fixed at 1, a replicate's CKA is the mean of its drawn
HSIC(a, b) values, so the interval is the percentile-bootstrap interval of a sample mean. For
k = 100 draws from N(mu, sigma^2) its coverage of mu is 95% up to the percentile bootstrap's
small-sample shortfall (~0.4 points at k = 100), and its width is about 2 * 1.96 * sigma / sqrt(k).
Each of 2000 layer pairs holds an independent sample (one accumulator, one call).
"""

from __future__ import annotations

import math

import torch

from suite.cka.core import MinibatchCKA

K, PAIRS, MU, SIGMA = 100, 2000, 0.6, 0.05


def accumulator_with_known_batches(seed: int) -> MinibatchCKA:
    g = torch.Generator().manual_seed(seed)
    hsic_ab = MU + SIGMA * torch.randn(K, 1, PAIRS, generator=g, dtype=torch.float64)  # [k, La=1, Lb]
    acc = MinibatchCKA(1, PAIRS, keep_batches=True)
    for b in range(K):  # the per-batch values `update` would keep, with self-HSIC 1
        ab, aa, bb = hsic_ab[b], torch.ones(1, dtype=torch.float64), torch.ones(PAIRS, dtype=torch.float64)
        acc.batches.append((ab, aa, bb))
        acc.sum_ab += ab
        acc.sum_aa += aa
        acc.sum_bb += bb
        acc.n_batches += 1
    return acc


def test_95_percent_interval_covers_the_true_value_95_percent_of_the_time():
    acc = accumulator_with_known_batches(seed=0)
    lo, hi = acc.bootstrap_ci(n_boot=2000, level=0.95, seed=1)
    assert lo.shape == hi.shape == (1, PAIRS)
    coverage = ((lo <= MU) & (MU <= hi)).double().mean().item()
    # binomial spread over 2000 samples: ~0.5 points; a 90% or 99% interval lands outside
    assert 0.93 <= coverage <= 0.97, coverage
    width = (hi - lo).mean().item()
    expected = 2 * 1.959964 * SIGMA / math.sqrt(K)  # 0.0196
    assert abs(width / expected - 1) < 0.04, (width, expected)  # 90%: -16%, 99%: +31%


def test_level_sets_the_width():
    """A 90% interval is narrower by 1.645 / 1.960 (the normal quantiles) than a 95% one."""
    acc = accumulator_with_known_batches(seed=2)
    lo95, hi95 = acc.bootstrap_ci(n_boot=2000, level=0.95, seed=3)
    lo90, hi90 = acc.bootstrap_ci(n_boot=2000, level=0.90, seed=3)
    ratio = ((hi90 - lo90).mean() / (hi95 - lo95).mean()).item()
    assert abs(ratio - 1.644854 / 1.959964) < 0.03, ratio
    assert ((lo95 <= lo90) & (hi90 <= hi95)).all()


def test_interval_is_centred_on_the_point_estimate():
    acc = accumulator_with_known_batches(seed=4)
    lo, hi = acc.bootstrap_ci(n_boot=2000, level=0.95, seed=5)
    centre, point = (lo + hi) / 2, acc.compute()
    # the bootstrap distribution of a mean is symmetric: the centre is within a few % of the half-width
    # (+1e-12: where the interval has no width, centre and point differ by float64 rounding, a few u of O(1))
    assert ((centre - point).abs() < 0.1 * (hi - lo) / 2 + 1e-12).double().mean() > 0.95
