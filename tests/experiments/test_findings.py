"""Findings from constructed result files: d per seed, the interval over seeds and minibatches,
the verdict the rule reads off the interval, the noise ceiling and floor, the forest plot, and
sentences that follow the numbers (never typed in)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from suite.experiments.findings import bound, estimate, make_finding
from suite.experiments.intervals import Interval
from suite.experiments.measures import Source
from suite.experiments.plans import plan_findings
from suite.experiments.recipe import parse_recipe
from suite.experiments.runner import Lab
from suite.experiments.steps import Workspace
from suite.results.cka import CKAResult
from suite.where import Where
from tests.experiments.test_experiments import blocks_of

BATCHES = 8


def recipe(kind: str, seeds: list[int], measure: str, rule: str = "below", protocol="suite", timesteps=(2,)):
    raw = {"recipe": kind, "name": "constructed", "seeds": seeds, "protocol": protocol, "data": {"size": 8},
           "train": {"width": 0.25, "timesteps": list(timesteps) if kind == "temporal" else 2, "epochs": 1},
           "cka": {"samples": 64, "batch_size": 8, "measures": ["linear-cka"]},
           "finding": [{"key": "k", "measure": measure, "claim": "reports x", "source": "the abstract",
                        "rule": rule, "margin": 0.05}]}
    return parse_recipe(raw, "constructed")


def time_result(first: np.ndarray, last: np.ndarray) -> CKAResult:
    """A time comparison (T=2) over conv1, layer1.0 and layer3.2 whose off-diagonal CKA in
    minibatch b is first[b] (layer1.0) and last[b] (layer3.2); self-HSIC 1, so each batch's CKA
    is its HSIC and the result's CKA their mean."""
    offs = np.stack([np.full(BATCHES, 0.5), first, last], axis=1)  # [batches, L]
    ab = torch.ones(BATCHES, 3, 2, 2, dtype=torch.float64)
    ab[:, :, 0, 1] = ab[:, :, 1, 0] = torch.tensor(offs)
    ones = torch.ones(BATCHES, 3, 2, dtype=torch.float64)
    names = ["conv1", "layer1.0", "layer3.2"]
    return CKAResult(matrix=ab.mean(0), layers_a=names, layers_b=names, n_samples=64, hsic_ab=ab.mean(0),
                     hsic_aa=ones.mean(0), hsic_bb=ones.mean(0), n_batches=BATCHES, compare="time", time="each",
                     batches={"linear-cka": {"hsic_ab": ab, "hsic_aa": ones, "hsic_bb": ones}})


def run_finding(tmp_path, rec, results_by_seed):
    """The finding the runner makes when the comparison at seed s gives results_by_seed[s]."""
    lab = Lab(rec, Workspace(where=Where(out=tmp_path / "out"), models=tmp_path / "runs"))
    lab.source = lambda c, protocol: Source(results_by_seed(c, protocol), tmp_path / "r.h5", blocks_of())
    (plan,) = plan_findings(rec)
    return lab.finding(plan)


def per_seed_d(ds: list[float], spread: float, seed: int):
    """Results whose d (last - first) is ds[s] on average over 8 minibatches with that spread."""
    rng = np.random.default_rng(seed)
    out = {}
    for s, d in enumerate(ds):
        first = 0.6 + spread * rng.standard_normal(BATCHES)
        last = first.mean() + d + spread * rng.standard_normal(BATCHES)
        out[s] = time_result(first, last)
    return out


@pytest.mark.parametrize("ds, expected", [
    ([-0.30, -0.32, -0.28], "agrees"),  # the whole interval below -0.05
    ([-0.02, -0.10, -0.06], "inconclusive"),  # the interval straddles -0.05
    ([0.30, 0.31, 0.29], "disagrees"),  # the whole interval above +0.05
])
def test_verdict_follows_the_interval_over_seeds(tmp_path, ds, expected):
    results = per_seed_d(ds, 0.01, 0)
    finding = run_finding(tmp_path, recipe("temporal", [0, 1, 2], "time-first-vs-last"),
                          lambda c, p: results[c.a.optim.seed])
    assert finding.verdict == expected
    # the interval by its rule, worked here from the results' own per-batch numbers
    d = [float(results[s].matrix[2, 0, 1] - results[s].matrix[1, 0, 1]) for s in range(3)]
    (est,) = finding.estimates
    # 1e-12: float64 means of 2 to 8 values of O(1) and a difference, a few u = 1e-15 apart whatever the order
    assert est["interval"]["per_seed"] == pytest.approx(d, abs=1e-12)
    assert est["interval"]["mean"] == pytest.approx(np.mean(d), abs=1e-12)
    half = est["interval"]["hi"] - est["interval"]["mean"]
    assert half >= stats.t.ppf(0.975, 2) * math.sqrt(np.var(d, ddof=1) / 3) - 1e-12  # at least the seeds' spread
    assert f"d = {np.mean(d):+.2f} [95% CI {est['interval']['lo']:+.2f}, {est['interval']['hi']:+.2f}]" in finding.sentence
    assert finding.sentence.endswith(f": {expected}")


def test_seeds_that_agree_by_chance_keep_the_width_their_minibatches_allow(tmp_path):
    """Three seeds with the same d but noisy minibatches: the between-seed variance is 0, so the
    within-seed bootstrap variance sets the width (the interval is not a point)."""
    results = {}
    rng = np.random.default_rng(3)
    for s in range(3):
        first = 0.6 + 0.05 * rng.standard_normal(BATCHES)
        last = first.mean() - 0.2 + 0.05 * rng.standard_normal(BATCHES)
        last += (first.mean() - 0.2) - last.mean()  # every seed's d exactly -0.2
        results[s] = time_result(first, last)
    finding = run_finding(tmp_path, recipe("temporal", [0, 1, 2], "time-first-vs-last"), lambda c, p: results[c.a.optim.seed])
    iv = finding.estimates[0]["interval"]
    assert iv["per_seed"] == pytest.approx([-0.2] * 3, abs=1e-12)  # -0.2 up to 8-term float64 means: ~8 u = 1e-15
    assert iv["hi"] - iv["lo"] > 0.01


def test_one_seed_gets_the_bootstrap_interval_of_its_minibatches(tmp_path):
    results = per_seed_d([-0.3], 0.05, 1)
    finding = run_finding(tmp_path, recipe("temporal", [0], "time-first-vs-last"), lambda c, p: results[0])
    iv = finding.estimates[0]["interval"]
    assert iv["how"] == "bootstrap within one seed" and iv["lo"] < iv["mean"] < iv["hi"]


def test_a_changed_seed_list_changes_the_numbers_in_the_sentence(tmp_path):
    results = per_seed_d([-0.30, -0.10, 0.20], 0.01, 2)
    three = run_finding(tmp_path / "a", recipe("temporal", [0, 1, 2], "time-first-vs-last"),
                        lambda c, p: results[c.a.optim.seed])
    two = run_finding(tmp_path / "b", recipe("temporal", [0, 1], "time-first-vs-last"),
                      lambda c, p: results[c.a.optim.seed])
    m3, m2 = three.estimates[0]["interval"]["mean"], two.estimates[0]["interval"]["mean"]
    assert m3 != pytest.approx(m2)
    assert f"d = {m3:+.2f}" in three.sentence and f"d = {m2:+.2f}" in two.sentence
    assert "over seeds 0, 1, 2" in three.sentence and "over seeds 0, 1 (" in two.sentence


def test_each_temporal_finding_starts_with_its_timesteps(tmp_path):
    """One spec gives a finding per T; the sentences would read alike but for their T, so each
    starts with it, and each T's numbers are its own."""
    results = {2: per_seed_d([-0.30], 0.01, 4)[0], 4: per_seed_d([-0.10], 0.01, 5)[0]}
    rec = recipe("temporal", [0], "time-first-vs-last", timesteps=(2, 4))
    lab = Lab(rec, Workspace(where=Where(out=tmp_path / "out"), models=tmp_path / "runs"))
    lab.source = lambda c, protocol: Source(results[c.a.model.timesteps], tmp_path / "r.h5", blocks_of())
    findings = [lab.finding(plan) for plan in plan_findings(rec)]
    assert [f.key for f in findings] == ["k-T2", "k-T4"]
    for f, T in zip(findings, (2, 4)):
        d = float(results[T].matrix[2, 0, 1] - results[T].matrix[1, 0, 1])
        assert f.sentence.startswith(f"T={T}: time-step CKA (mean over t != t') in the first block ")
        assert f"d = {d:+.2f} [95% CI" in f.sentence


def models_result(diag: float, batches_noise: float = 0.0, seed: int = 0) -> CKAResult:
    """Two models over conv1, layer1.0, layer2.0 with the same-layer CKA `diag` (0.1 elsewhere)."""
    rng = np.random.default_rng(seed)
    m = torch.full((3, 3), 0.1, dtype=torch.float64)
    m.fill_diagonal_(diag)
    ab = m.unsqueeze(0).repeat(BATCHES, 1, 1) + batches_noise * torch.tensor(rng.standard_normal((BATCHES, 3, 3)))
    ones = torch.ones(BATCHES, 3, dtype=torch.float64)
    names = ["conv1", "layer1.0", "layer2.0"]
    return CKAResult(matrix=ab.mean(0), layers_a=names, layers_b=names, n_samples=64, hsic_ab=ab.mean(0),
                     hsic_aa=ones[0], hsic_bb=ones[0], n_batches=BATCHES,
                     batches={"linear-cka": {"hsic_ab": ab, "hsic_aa": ones, "hsic_bb": ones}},
                     config={"model_config": {"kind": "snn"}, "model2_config": {"kind": "ann"}})


def test_a_two_model_finding_quotes_its_noise_ceiling_and_floor(tmp_path):
    """SNN-vs-ANN 0.8 with residual connections; SNN vs SNN' 0.9, ANN vs ANN' 0.95; SNN vs an
    untrained ANN 0.2: the sentence and the estimate hold them, averaged over seeds."""
    def results(c, protocol):
        if c.b_untrained:
            return models_result(0.2)
        if c.b is not None and c.a.model.kind == c.b.model.kind:
            return models_result(0.9 if c.a.model.kind == "snn" else 0.95)
        return models_result(0.8 if c.a.model.residual else 0.6, 0.01, c.a.optim.seed)

    finding = run_finding(tmp_path, recipe("residual", [0, 1, 2], "residual-ann-likeness", rule="above"), results)
    (est,) = finding.estimates
    assert est["headline"] == pytest.approx(0.8, abs=0.02)  # the mean diagonal with residual connections
    assert est["ceiling"] == {"SNN-vs-SNN'": pytest.approx(0.9), "ANN-vs-ANN'": pytest.approx(0.95)}
    assert est["floor"] == pytest.approx(0.2)
    assert "(ceiling SNN-vs-SNN' 0.90, ANN-vs-ANN' 0.95, floor 0.20)" in finding.sentence
    assert finding.verdict == "agrees"  # d = 0.8 - 0.6 = 0.2, tight around it
    assert (tmp_path / "out" / "forest-k.png").is_file()


def test_a_sign_flip_between_protocols_is_named(tmp_path):
    def results(c, protocol):
        d = 0.3 if protocol.name == "suite" else -0.3
        return per_seed_d([d] * 3, 0.01, 4)[c.a.optim.seed]

    finding = run_finding(tmp_path, recipe("temporal", [0, 1, 2], "time-first-vs-last", protocol=["suite", "snncka"]),
                          results)
    assert "(protocol-dependent: snncka d -0.30, agrees)" in finding.sentence
    assert finding.verdict == "disagrees"


@pytest.mark.parametrize("x, margin, printed", [
    (-0.0496, 0.05, "-0.0496"),  # two decimals would print the margin itself: inside it, so 4
    (-0.0504, 0.05, "-0.0504"),  # ... and beyond it
    (0.0503, 0.05, "+0.0503"),
    (-0.1234, 0.05, "-0.12"),  # far from the margin: two decimals
    (0.0049, 0.0, "+0.005"),  # rule none (margin 0): +0.00 would hide the sign
])
def test_a_bound_next_to_the_margin_keeps_its_side_in_the_sentence(x, margin, printed):
    assert bound(x, margin) == printed


def test_the_sentence_prints_a_bound_beside_the_margin_with_the_decimals_its_verdict_read():
    """Two intervals whose upper ends round to the margin -0.05: one inside it (inconclusive),
    one beyond (agrees); each sentence shows the side its verdict read."""
    spec = recipe("temporal", [0, 1, 2], "time-first-vs-last").findings[0]
    values = {"first_block": 0.99, "last_block": 0.89}
    for hi, expected in ((-0.0496, "inconclusive"), (-0.0504, "agrees")):
        iv = Interval((-0.10, -0.11, -0.09), -0.10, -0.16, hi, "t over 3 seeds")
        f = make_finding(spec, [estimate(spec, "suite", "linear-cka", iv, values)], (0, 1, 2), [])
        assert f.verdict == expected
        assert f"d = -0.10 [95% CI -0.16, {hi:+.4f}] over seeds 0, 1, 2" in f.sentence, f.sentence
