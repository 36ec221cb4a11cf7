"""Unbiased minibatch CKA (suite.cka.core) against a plain float64 transcription of the paper.

Tolerances: CKA of float32 features vs the float64 reference on the same values: 1e-6
(measured ~3e-9). Two float64 routes to one number (CKA(X, X) = 1, merge = single pass,
Eq. 3 vs U-centring): 1e-12, from the worst-case error of a float64 sum of N terms in any
order, N u sum|terms| (u = 2^-53 = 1.1e-16); for CKA, sum|K~ L~| <= |K~| |L~| (Cauchy-Schwarz),
so two orders of the n² HSIC terms move CKA by <= n² u: 2.6e-13 at n = 48, the largest here.
"""

import itertools
import math

import pytest
import torch

from suite.cka import core
from suite.cka.core import MinibatchCKA, cka_matrix, rbf_cka_matrix
from suite.errors import SuiteError

F64 = torch.float64



# ------------------------------------------------------------------ plain float64 reference

def hsic1_reference(K: torch.Tensor, L: torch.Tensor) -> float:
    """Eq. 3 of Nguyen, Raghu & Kornblith (2021), written out in float64:
    HSIC_1 = 1/(n(n-3)) [tr(K̃L̃) + 1ᵀK̃1 1ᵀL̃1 / ((n-1)(n-2)) - 2/(n-2) 1ᵀK̃L̃1], K̃ = K, diag 0."""
    n = K.shape[0]
    K, L = K.clone().fill_diagonal_(0), L.clone().fill_diagonal_(0)
    one = torch.ones(n, 1, dtype=F64)
    trace = torch.trace(K @ L)
    middle = (one.T @ K @ one) * (one.T @ L @ one) / ((n - 1) * (n - 2))
    last = 2 / (n - 2) * (one.T @ K @ L @ one)
    return float((trace + middle - last) / (n * (n - 3)))


def centred64(x: torch.Tensor) -> torch.Tensor:
    """Features as float64 [n, d] minus their mean. HSIC_1 ignores the mean (see
    test_eq3_ignores_a_mean_shift), and the reference must drop it: Eq. 3 evaluated on raw
    Grams cancels terms of size (n·|mean|²)² even in float64, which for a +1000 offset layer
    measured errors of 8e-4 in CKA and 3e-6 on the 24-layer ReLU stack below."""
    x = x.double().flatten(1)
    return x - x.mean(dim=0, keepdim=True)


def cka_reference(feats_a, feats_b) -> torch.Tensor:
    """Linear CKA from Eq. 3 in float64, one pair of layers at a time."""
    grams_a = [centred64(x) @ centred64(x).T for x in feats_a]
    grams_b = [centred64(y) @ centred64(y).T for y in feats_b]
    self_a = [hsic1_reference(K, K) for K in grams_a]
    self_b = [hsic1_reference(L, L) for L in grams_b]
    out = torch.empty(len(grams_a), len(grams_b), dtype=F64)
    for i, K in enumerate(grams_a):
        for j, L in enumerate(grams_b):
            out[i, j] = hsic1_reference(K, L) / (self_a[i] * self_b[j]) ** 0.5
    return out


def deep_relu_stack(x: torch.Tensor, depth: int = 24, seed: int = 0) -> list[torch.Tensor]:
    """Features of a random ReLU MLP with positive biases: means grow large against spreads."""
    g = torch.Generator().manual_seed(seed)
    d = x.shape[1]
    feats, h = [], x
    for _ in range(depth):
        w = torch.randn(d, d, generator=g) * (1.4 / d**0.5)
        h = torch.relu(h @ w + 1.0)
        h = h / h.std()
        feats.append(h)
    return feats


def degenerate_layers(n: int = 48, d: int = 40, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    mix = x @ torch.randn(d, d, generator=g)
    return [
        x,
        1e-4 * mix,                              # tiny scale
        1e4 * torch.tanh(mix),                   # huge scale
        1000.0 + x[:, :20] + 0.1 * mix[:, :20],  # large mean offset
        torch.relu(mix - 2.5 * mix.std()),       # ReLU-dead: mostly zeros
        torch.randn(n, 3, 4, 4, generator=g),    # conv-shaped, flattened by CKA
    ]


# ------------------------------------------------------------------ agreement with the paper

def test_u_centred_hsic_equals_eq3_of_the_paper():
    g = torch.Generator().manual_seed(1)
    X, Y = torch.randn(12, 5, generator=g, dtype=F64), torch.randn(12, 7, generator=g, dtype=F64)
    K, L = X @ X.T, Y @ Y.T
    fast = (core.u_centre(K) * core.u_centre(L)).sum() / (12 * 9)
    # n = 12: Eq. 3's terms sum to 22 in absolute value (HSIC 2.4): <= n² u 22 = 3.5e-13 apart, any BLAS
    assert float(fast) == pytest.approx(hsic1_reference(K, L), abs=1e-12, rel=1e-12)


def test_eq3_ignores_a_mean_shift():
    g = torch.Generator().manual_seed(2)
    X, Y = torch.randn(12, 5, generator=g, dtype=F64), torch.randn(12, 7, generator=g, dtype=F64)
    Xs = X + torch.randn(1, 5, generator=g, dtype=F64)  # the same shift for every sample
    # float64: Eq. 3's n² = 144 terms sum to 25 in absolute value (HSIC 0.70), <= 144 u 25 / 0.7 = 6e-13 relative
    assert hsic1_reference(Xs @ Xs.T, Y @ Y.T) == pytest.approx(hsic1_reference(X @ X.T, Y @ Y.T), rel=1e-10)


def test_cka_matrix_matches_float64_reference_on_degenerate_layers():
    feats = degenerate_layers()  # float32
    got = cka_matrix(feats, feats[::-1])
    assert got.dtype == F64 and got.shape == (6, 6)
    assert torch.allclose(got, cka_reference(feats, feats[::-1]), atol=1e-6, rtol=0)


def test_cka_matrix_matches_float64_reference_on_24_layer_relu_stack():
    x = torch.rand(64, 48, generator=torch.Generator().manual_seed(3))
    feats = deep_relu_stack(x)  # float32, 24 layers
    mean_over_spread = feats[-1].mean() / feats[-1].std(dim=0).mean()
    assert mean_over_spread > 10  # the regime where raw float32 Grams cancel catastrophically
    got = cka_matrix(feats)
    ref = cka_reference(feats, feats)
    assert (got - ref).abs().max() < 1e-6


def test_float32_grams_after_centring_match_float64_grams():
    x = torch.rand(64, 48, generator=torch.Generator().manual_seed(4))
    feats = deep_relu_stack(x)
    fast = cka_matrix(feats)                            # float32 Grams of centred features
    exact = cka_matrix([f.double() for f in feats])     # float64 Grams
    assert (fast - exact).abs().max() < 1e-6


def test_cka_of_a_layer_with_itself_is_one():
    feats = degenerate_layers()
    # HSIC(K, K) as a matmul and as a sum of squares, n² = 2304 positive terms: <= n² u = 2.6e-13 from 1
    assert torch.allclose(cka_matrix(feats).diagonal(), torch.ones(6, dtype=F64), atol=1e-12, rtol=0)


def test_cka_is_invariant_to_orthogonal_transform_and_isotropic_scaling():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(40, 16, generator=g)
    Y = torch.relu(X @ torch.randn(16, 24, generator=g))
    Q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=F64))
    XQ = (X.double() @ Q).float()
    got = cka_matrix([X, XQ, 3.7 * X], [Y, 0.01 * Y])
    assert torch.allclose(got[:, 0], got[0, 0].expand(3), atol=1e-6, rtol=0)
    assert torch.allclose(got[:, 1], got[:, 0], atol=1e-6, rtol=0)
    assert float(cka_matrix([X], [XQ])) == pytest.approx(1.0, abs=1e-6)


def test_self_comparison_computes_each_gram_once(monkeypatch):
    calls = []
    real = core.gram
    monkeypatch.setattr(core, "gram", lambda x, name="?": calls.append(name) or real(x, name))
    feats = degenerate_layers()
    same = cka_matrix(feats)
    assert len(calls) == 6
    apart = cka_matrix(feats, [f.clone() for f in feats])
    assert len(calls) == 6 + 12
    assert torch.allclose(same, apart, atol=1e-12, rtol=0)  # same Grams, HSIC sums maybe reordered: <= n² u = 2.6e-13


# ------------------------------------------------------------------ minibatches

def batches(k: int = 4, n: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(k):
        x = torch.randn(n, 10, generator=g)
        yield [x, torch.relu(x @ torch.randn(10, 12, generator=g))], [torch.tanh(x[:, :6]), x + 0.1 * torch.randn(n, 10, generator=g)]


def test_minibatch_cka_averages_reference_hsic_over_batches():
    acc = MinibatchCKA(2, 2)
    ref_ab, ref_aa, ref_bb = torch.zeros(2, 2, dtype=F64), torch.zeros(2, dtype=F64), torch.zeros(2, dtype=F64)
    for fa, fb in batches(k=3):
        acc.update(fa, fb)
        Ka = [centred64(x) @ centred64(x).T for x in fa]
        Kb = [centred64(y) @ centred64(y).T for y in fb]
        for i in range(2):
            ref_aa[i] += hsic1_reference(Ka[i], Ka[i]) / 3
            ref_bb[i] += hsic1_reference(Kb[i], Kb[i]) / 3
            for j in range(2):
                ref_ab[i, j] += hsic1_reference(Ka[i], Kb[j]) / 3
    assert acc.n_samples == 48 and acc.n_batches == 3
    assert torch.allclose(acc.hsic_ab, ref_ab, rtol=1e-6, atol=0)
    expected = ref_ab / torch.sqrt(ref_aa[:, None] * ref_bb[None, :])
    assert torch.allclose(acc.compute(), expected, atol=1e-6, rtol=0)


def test_merge_equals_single_pass_accumulation():
    data = list(batches(k=4))
    whole, first, second = MinibatchCKA(2, 2), MinibatchCKA(2, 2), MinibatchCKA(2, 2)
    for i, (fa, fb) in enumerate(data):
        whole.update(fa, fb)
        (first if i < 2 else second).update(fa, fb)
    merged = first.merge(second)
    assert merged.n_samples == whole.n_samples and merged.n_batches == whole.n_batches
    # 4 float64 batch HSICs (|h_ab| < 33) added in two orders: <= 3 u sum|h| = 4.4e-14; CKA moves by <= ~4 u
    assert torch.allclose(merged.sum_ab, whole.sum_ab, atol=1e-12, rtol=1e-12)
    assert torch.allclose(merged.compute(), whole.compute(), atol=1e-12, rtol=0)


def test_state_dict_round_trip_resumes_exactly():
    data = list(batches(k=3))
    whole, part = MinibatchCKA(2, 2), MinibatchCKA(2, 2)
    for fa, fb in data:
        whole.update(fa, fb)
    part.update(*data[0])
    resumed = MinibatchCKA.from_state(part.state_dict())
    for fa, fb in data[1:]:
        resumed.update(fa, fb)
    assert torch.equal(resumed.sum_ab, whole.sum_ab) and resumed.n_samples == whole.n_samples


def test_bootstrap_interval_contains_the_point_estimate():
    acc = MinibatchCKA(2, 2, keep_batches=True)
    for fa, fb in batches(k=20, n=12, seed=7):
        acc.update(fa, fb)
    point = acc.compute()
    lo, hi = acc.bootstrap_ci(n_boot=500, level=0.95, seed=0)
    assert lo.shape == hi.shape == (2, 2)
    # slack for a quantile equal to the point: 20 batch HSICs summed two ways, <= 20 u = 2e-15 in CKA
    assert bool((lo <= point + 1e-12).all() and (point <= hi + 1e-12).all())
    assert bool((hi - lo > 0).all())


def test_bootstrap_needs_kept_batches():
    acc = MinibatchCKA(2, 2)
    for fa, fb in batches(k=2):
        acc.update(fa, fb)
    with pytest.raises(SuiteError, match=r"^bootstrap intervals need MinibatchCKA\(\.\.\., keep_batches=True\)$"):
        acc.bootstrap_ci()


# ------------------------------------------------------------------ errors

def test_fewer_than_four_samples_is_an_error():
    x = torch.randn(3, 5)
    with pytest.raises(SuiteError, match=r"batch of 3 samples.*n >= 4"):
        cka_matrix([x])


def test_nan_features_name_the_layer():
    x = torch.randn(8, 5)
    bad = x.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(SuiteError, match="layer3.conv"):
        cka_matrix([x, bad], names_a=["fc", "layer3.conv"])
    with pytest.raises(SuiteError, match="NaN or inf"):
        cka_matrix([x], [x.clone().fill_(float("inf"))])


def test_mismatched_sample_counts_between_models_is_an_error():
    acc = MinibatchCKA(1, 1)
    with pytest.raises(SuiteError, match="8 samples and model b 6"):
        acc.update([torch.randn(8, 3)], [torch.randn(6, 3)])


def test_constant_layer_gives_nan_not_a_crash():
    x = torch.randn(8, 5)
    got = cka_matrix([x, torch.ones(8, 5)])
    assert torch.isnan(got[1]).all() and got[0, 0] == pytest.approx(1.0)


# ------------------------------------------------------------------ RBF kernel

def rbf_cka_reference(X, Y, sigma_frac=0.5):
    def kernel(Z):
        d = torch.cdist(Z.double(), Z.double())
        sigma = sigma_frac * d[~torch.eye(len(Z), dtype=torch.bool)].median()
        return torch.exp(-(d**2) / (2 * sigma**2))
    K, L = kernel(X), kernel(Y)
    return hsic1_reference(K, L) / (hsic1_reference(K, K) * hsic1_reference(L, L)) ** 0.5


def test_rbf_cka_of_a_layer_with_itself_is_one_and_matches_reference():
    g = torch.Generator().manual_seed(8)
    X = torch.randn(30, 6, generator=g)
    Y = torch.sin(X @ torch.randn(6, 9, generator=g))
    got = rbf_cka_matrix([X, Y], [X, Y], sigma_frac=0.5)
    # n² = 900 float64 terms in two orders: <= 900 u = 1e-13 from 1; a wrong kernel is off by > 1e-3
    assert got.diagonal().sub(1).abs().max() < 1e-9
    assert float(got[0, 1]) == pytest.approx(rbf_cka_reference(X, Y), abs=1e-6)


def small_pair(scale: float = 1.0, seed: int = 9):
    """Two related layers of 20 samples; scale 0.05 puts every pairwise distance below 1."""
    g = torch.Generator().manual_seed(seed)
    X = scale * torch.randn(20, 5, generator=g)
    Y = scale * torch.tanh(X / scale @ torch.randn(5, 7, generator=g))
    return X, Y


def test_rbf_cka_defaults_to_half_the_median_distance_and_compares_two_models():
    X, Y = small_pair()
    Z = torch.randn(20, 3, generator=torch.Generator().manual_seed(10))
    got = rbf_cka_matrix([X, Y], [Z])  # default sigma_frac, a separate model b
    assert got.shape == (2, 1)
    for i, A in enumerate([X, Y]):
        assert float(got[i, 0]) == pytest.approx(rbf_cka_reference(A, Z, sigma_frac=0.5), abs=1e-6)
    # the value depends on the bandwidth, so 0.5 is what the default means
    assert abs(rbf_cka_reference(X, Z, sigma_frac=0.5) - rbf_cka_reference(X, Z, sigma_frac=1.5)) > 1e-3
    # feats_b omitted: a self-comparison, the same as passing feats_a again
    # the same Grams; HSIC sums maybe reordered: <= n² u = 4.4e-14 (n = 20)
    assert torch.allclose(rbf_cka_matrix([X, Y]), rbf_cka_matrix([X, Y], [X.clone(), Y.clone()]), atol=1e-12, rtol=0)


def test_rbf_cka_of_features_closer_than_one_matches_reference():
    """Distances and bandwidth below 1 (scale 0.05): nothing may be clamped or refused there."""
    X, Y = small_pair(scale=0.05)
    dist = torch.cdist(X.double(), X.double())
    assert dist.max() < 1 and 0.5 * dist[dist > 0].median() < 1  # the regime this test is about
    got = rbf_cka_matrix([X], [Y], sigma_frac=0.5)
    assert float(got[0, 0]) == pytest.approx(rbf_cka_reference(X, Y, sigma_frac=0.5), abs=1e-6)


@pytest.mark.parametrize("side", ["a", "b"])
def test_rbf_cka_of_a_constant_layer_is_refused_naming_it(side):
    X, _ = small_pair()
    const = torch.ones(20, 4)
    a, b = ([X, const], [X]) if side == "a" else ([X], [X, const])
    with pytest.raises(SuiteError, match=rf"layer {side}\[1\]: median pairwise distance is 0"):
        rbf_cka_matrix(a, b)
    with pytest.raises(SuiteError, match="layer block2.conv: median"):
        rbf_cka_matrix(a, b, names_a=["fc", "block2.conv"] if side == "a" else ["fc"],
                       names_b=["fc", "block2.conv"] if side == "b" else ["fc"])


def test_merge_keeps_both_accumulators_batches_for_the_bootstrap():
    data = list(batches(k=4, seed=3))
    whole = MinibatchCKA(2, 2, keep_batches=True)
    first, second = MinibatchCKA(2, 2, keep_batches=True), MinibatchCKA(2, 2, keep_batches=True)
    for i, (fa, fb) in enumerate(data):
        whole.update(fa, fb)
        (first if i < 2 else second).update(fa, fb)
    merged = first.merge(second)
    assert len(merged.batches) == 4
    for got, want in zip(merged.bootstrap_ci(n_boot=50), whole.bootstrap_ci(n_boot=50)):
        assert torch.allclose(got, want, atol=1e-12, rtol=0)  # the same batches in the same order: equal sums


def test_merge_refuses_other_layer_sets():
    with pytest.raises(SuiteError, match="^cannot merge CKA accumulators over different layer sets$"):
        MinibatchCKA(2, 2).merge(MinibatchCKA(2, 3))


def test_state_dict_keeps_the_layer_names():
    acc = MinibatchCKA(2, 1, names_a=["conv1", "fc"], names_b=["lif3"])
    acc.update(*[[torch.randn(8, 3), torch.randn(8, 2)], [torch.randn(8, 4)]])
    resumed = MinibatchCKA.from_state(acc.state_dict())
    assert resumed.names_a == ["conv1", "fc"] and resumed.names_b == ["lif3"]


def test_rbf_gram_is_exp_of_distances_over_half_the_median_by_default():
    # float64 features: squared distances K_ii + K_jj - 2 K_ij (|K| < 14, d = 5) vs cdist's differences are each
    # within (d + 3) u 4 max K_ii = 5e-14, and the kernel's slope is <= 1/(2 sigma²) = 0.21: entries <= 1e-14 apart
    X = small_pair(seed=11)[0].double()
    d = torch.cdist(X, X)
    sigma = 0.5 * d[~torch.eye(20, dtype=torch.bool)].median()
    expected = torch.exp(-(d**2) / (2 * sigma**2))
    assert torch.allclose(core.rbf_gram(X), expected, atol=1e-12, rtol=0)


# ------------------------------------------------------------------ edge cases (mutation survivors)

def u_centre_by_loops(K: torch.Tensor) -> torch.Tensor:
    """The module docstring's formula, one entry at a time (sums over K with a zero diagonal)."""
    n = K.shape[0]
    Z = K.clone().fill_diagonal_(0)
    total = sum(float(Z[k, l]) for k in range(n) for l in range(n))
    out = torch.zeros(n, n, dtype=F64)
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = (Z[i, j] - sum(float(Z[i, l]) for l in range(n)) / (n - 2)
                             - sum(float(Z[k, j]) for k in range(n)) / (n - 2) + total / ((n - 1) * (n - 2)))
    return out


def test_u_centre_of_one_matrix_and_of_a_stack_follow_the_formula():
    g = torch.Generator().manual_seed(12)
    stack = torch.randn(2, 6, 6, generator=g, dtype=F64)  # not symmetric: rows and columns differ
    got = core.u_centre(stack)
    assert got.shape == (2, 6, 6)
    for b in range(2):
        # n = 6, |K| < 4: sums of <= 36 float64 terms in two orders, <= 36 u 36 4 / 20 = 3e-14 an entry
        assert torch.allclose(got[b], u_centre_by_loops(stack[b]), atol=1e-12, rtol=0)
        assert torch.allclose(core.u_centre(stack[b]), u_centre_by_loops(stack[b]), atol=1e-12, rtol=0)


def test_four_samples_are_enough():
    g = torch.Generator().manual_seed(13)
    X, Y = torch.randn(4, 3, generator=g), torch.randn(4, 5, generator=g)
    assert float(cka_matrix([X], [Y])) == pytest.approx(float(cka_reference([X], [Y])), abs=1e-6)


def test_cka_from_hsic_is_nan_where_a_self_hsic_is_not_positive():
    got = core.cka_from_hsic(torch.tensor([[0.5, 0.5], [0.3, 0.3]], dtype=F64),
                             torch.tensor([-1.0, 4.0], dtype=F64), torch.tensor([1.0, 0.0], dtype=F64))
    # only (1, 0) has both self-HSICs positive: 0.3 / sqrt(4 * 1) = 0.15 (sqrt(4) = 2 and halving are
    # exact in binary, so got is the double nearest 0.15: 1e-15 is no rounding allowance)
    assert torch.isnan(got[0]).all() and torch.isnan(got[1, 1]) and float(got[1, 0]) == pytest.approx(0.15, abs=1e-15)


def test_cka_from_hsic_broadcasts_stacks_row_by_column():
    """Time comparisons pass stacks: HSIC [L, T, T] with self-HSICs [L, T] of each side. Entry
    (l, i, j) divides by sqrt(aa[l, i] * bb[l, j]), written out here as a loop; L = 2 and T = 3
    differ, and aa != bb, so dividing by the wrong pairing (aa[l, j], a transposed stack) fails."""
    g = torch.Generator().manual_seed(21)
    ab = torch.rand(2, 3, 3, generator=g, dtype=F64)
    aa, bb = 1 + torch.rand(2, 3, generator=g, dtype=F64), 2 + torch.rand(2, 3, generator=g, dtype=F64)
    want = torch.empty_like(ab)
    for l, i, j in itertools.product(range(2), range(3), range(3)):
        want[l, i, j] = ab[l, i, j] / math.sqrt(aa[l, i] * bb[l, j])
    # product, sqrt, division: correctly rounded IEEE ops on both sides (<= 2.5 u each of |want| < 0.71: 4e-16)
    assert torch.allclose(core.cka_from_hsic(ab, aa, bb), want, atol=1e-15, rtol=0)


def test_rbf_bandwidth_is_the_fraction_of_the_median_distance_asked_for():
    """rbf_gram's sigma_frac reaches the kernel (0.8, not the default 0.5), and rbf_from_gram on
    an uncentred linear Gram X X^T uses 0.5 when given none: both against torch.cdist distances."""
    X = small_pair(seed=12)[0].double()
    d = torch.cdist(X, X)
    median = d[~torch.eye(20, dtype=torch.bool)].median()
    for frac, got in ((0.8, core.rbf_gram(X, sigma_frac=0.8)), (0.5, core.rbf_from_gram(X @ X.T))):
        # as in test_rbf_gram_is_exp_of_distances_over_half_the_median_by_default: <= 1e-14 an entry
        assert torch.allclose(got, torch.exp(-(d**2) / (2 * (frac * median) ** 2)), atol=1e-12, rtol=0)


def test_half_precision_features_give_float32_grams():
    """float16 features are formed into float32 Grams: a float16 Gram (11-bit mantissa) would
    be off by ~1e-3 in CKA; float32 Grams agree with float64 on the same values to 1e-6."""
    g = torch.Generator().manual_seed(14)
    X = torch.randn(32, 64, generator=g).half()
    Y = (X.float() @ torch.randn(64, 48, generator=g)).relu().half()
    assert float((cka_matrix([X], [Y]) - cka_reference([X], [Y])).abs().max()) < 1e-6


def test_cka_matrix_names_the_bad_layer_of_model_b():
    x = torch.randn(8, 5)
    with pytest.raises(SuiteError, match="layer lif2 contain NaN"):
        cka_matrix([x], [x, x.clone().fill_(float("nan"))], names_b=["lif1", "lif2"])


def test_float32_matmul_is_exact_except_cuda_with_tf32(matmul_highest):
    matmul = torch.backends.cuda.matmul  # a flag object, not a plain attribute: set and restore by hand
    before = matmul.allow_tf32
    try:
        matmul.allow_tf32 = True
        assert core._float32_matmul_is_exact(torch.device("cpu")) is True  # CUDA's TF32 flag is not the CPU's
        assert core._float32_matmul_is_exact(torch.device("cuda")) is False
        matmul.allow_tf32 = False
        assert core._float32_matmul_is_exact(torch.device("cuda")) is True
    finally:
        matmul.allow_tf32 = before


@pytest.mark.parametrize("precision, exact", [("highest", True), ("high", False), ("medium", False)])
def test_reduced_precision_cpu_matmuls_make_grams_float64(precision, exact):
    """`set_float32_matmul_precision("medium")` lets oneDNN run float32 matmuls in bf16 on a CPU
    that has it (2.7e-4 relative on a Gram, measured on AMX); "high" allows TF32. Either way
    the Gram is formed in float64. Each entry's rounding error is at most d eps |x_i| |x_j| <=
    d eps max_i K_ii (a sum of d products; Cauchy-Schwarz), so relative to the largest entry:
    d eps64 = 6.7e-14 in float64, d eps32 = 3.6e-5 in float32, on any CPU."""
    before = torch.get_float32_matmul_precision()
    x = torch.randn(64, 300, generator=torch.Generator().manual_seed(3)) + 2.0
    try:
        torch.set_float32_matmul_precision(precision)
        assert core._float32_matmul_is_exact(torch.device("cpu")) is exact
        assert core.gram_dtype(x) == (torch.float32 if exact else torch.float64)
        K = core.gram(x)
    finally:
        torch.set_float32_matmul_precision(before)
    xc = x.double() - x.double().mean(dim=0)
    ref = xc @ xc.T
    tol = (4e-5 if exact else 1e-12)  # the bounds above
    assert float((K - ref).abs().max() / ref.abs().max()) < tol


def test_bootstrap_is_seeded_and_matches_a_loop_over_replicates():
    """Replicates drawn as documented (torch.randint with a generator seeded by `seed`), each
    averaged batch by batch in a loop; percentiles from numpy. Tolerance 1e-12 (float64 sums)."""
    import numpy as np
    acc = MinibatchCKA(2, 2, keep_batches=True)
    for fa, fb in batches(k=5, seed=4):
        acc.update(fa, fb)
    lo, hi = acc.bootstrap_ci(n_boot=200, level=0.8, seed=3)
    idx = torch.randint(5, (200, 5), generator=torch.Generator().manual_seed(3))
    reps = []
    for row in idx.tolist():
        ab = sum(acc.batches[j][0] for j in row)
        aa, bb = sum(acc.batches[j][1] for j in row), sum(acc.batches[j][2] for j in row)
        reps.append((ab / torch.sqrt(aa[:, None] * bb[None, :])).numpy())
    reps = np.stack(reps)
    # 5 HSICs a replicate summed in two orders (counts matmul vs loop): <= 5 u in CKA; quantiles interpolate in a few u
    assert np.allclose(lo.numpy(), np.nanquantile(reps, 0.1, axis=0), atol=1e-12, rtol=0)
    assert np.allclose(hi.numpy(), np.nanquantile(reps, 0.9, axis=0), atol=1e-12, rtol=0)
    # the levels' quantiles differ from nearby ones here, so the 0.1 / 0.9 above are pinned
    assert not np.allclose(np.nanquantile(reps, 0.1, axis=0), np.nanquantile(reps, 0.2 / 3, axis=0))
    assert not np.allclose(np.nanquantile(reps, 0.9, axis=0), np.nanquantile(reps, 1 - 0.2 / 3, axis=0))


def test_bootstrap_needs_two_batches_and_two_are_enough():
    acc = MinibatchCKA(2, 2, keep_batches=True)
    data = list(batches(k=2, seed=6))
    acc.update(*data[0])
    with pytest.raises(SuiteError, match="at least 2 minibatches, got 1"):
        acc.bootstrap_ci(n_boot=10)
    acc.update(*data[1])
    lo, hi = acc.bootstrap_ci(n_boot=10)
    assert bool((lo <= hi).all())


def test_all_reduce_over_two_ranks_unpacks_every_sum(monkeypatch):
    """Two ranks that accumulated the same batches (a stand-in process group: the sum of the
    packed state is twice it, the gather returns both lists): afterwards the accumulator equals
    the merge of two copies. La=2, Lb=3 so a misplaced slice changes a shape or a value."""
    import copy

    from suite import distributed
    acc = MinibatchCKA(2, 3, keep_batches=True)
    g = torch.Generator().manual_seed(15)
    for _ in range(2):
        x = torch.randn(8, 4, generator=g)
        acc.update([x, x.relu()], [x.tanh(), torch.randn(8, 2, generator=g), x[:, :2]])
    twice = copy.deepcopy(acc).merge(copy.deepcopy(acc))
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "all_reduce_sum", lambda t: t * 2)
    monkeypatch.setattr(distributed, "all_gather_objects", lambda obj: [obj, obj])
    acc.all_reduce()
    for name in ("sum_ab", "sum_aa", "sum_bb"):
        assert torch.equal(getattr(acc, name), getattr(twice, name)), name
    assert (acc.n_samples, acc.n_batches) == (32, 4) and len(acc.batches) == 4
    assert torch.equal(acc.compute(), twice.compute())


def test_default_layer_names_and_the_accumulators_refusals():
    acc = MinibatchCKA(2, 1)
    assert acc.names_a == ["a[0]", "a[1]"] and acc.names_b == ["b[0]"]
    with pytest.raises(SuiteError, match="^no batches were accumulated; CKA needs at least one batch$"):
        acc.compute()
    with pytest.raises(SuiteError, match=r"HSIC of \(1, 1\) layer pairs for an accumulator of 2 x 1"):
        acc.add(torch.zeros(1, 1, dtype=F64), torch.zeros(1, dtype=F64), torch.zeros(1, dtype=F64), 8)
    with pytest.raises(SuiteError, match="3 names given for 2 layers of model a"):
        MinibatchCKA(2, 1, names_a=["x", "y", "z"])
    with pytest.raises(SuiteError, match="no layers given for model a"):
        core._batch_size([], [], "a")
    with pytest.raises(SuiteError, match=r"layers of model b disagree on the number of samples: \{'p': 8, 'q': 6\}"):
        core._batch_size([torch.zeros(8, 2), torch.zeros(6, 2)], ["p", "q"], "b")


def test_rbf_cka_refusals_name_the_model_and_layer():
    x = torch.randn(8, 3)
    with pytest.raises(SuiteError, match="^models a and b saw different numbers of samples$"):
        rbf_cka_matrix([x], [torch.randn(6, 3)])
    with pytest.raises(SuiteError, match=r"layers of model a disagree on the number of samples"):
        rbf_cka_matrix([x, torch.randn(6, 3)], [x])
    with pytest.raises(SuiteError, match=r"layers of model b disagree on the number of samples"):
        rbf_cka_matrix([x], [x, torch.randn(6, 3)])
    with pytest.raises(SuiteError, match="features of layer conv2 contain NaN"):
        rbf_cka_matrix([x], [x.clone().fill_(float("nan"))], names_b=["conv2"])


def test_tf32_setting_that_torch_will_not_report_counts_as_inexact(monkeypatch):
    class Refuses:  # torch raises RuntimeError here when legacy and new TF32 APIs were mixed
        @property
        def allow_tf32(self):
            raise RuntimeError("mixed TF32 APIs")

    monkeypatch.setattr(torch.backends.cuda, "matmul", Refuses())
    assert core._float32_matmul_is_exact(torch.device("cuda")) is False


def test_grams_of_an_unnamed_layer_name_it_question_mark():
    """Called without a layer name (as library code may), the refusal still reads whole."""
    bad = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [2.0, 0.5], [1.0, 1.0]])
    for fn in (core.gram, core.u_gram):
        with pytest.raises(SuiteError) as caught:
            fn(bad)
        assert str(caught.value) == "features of layer ? contain NaN or inf (or overflow the Gram); CKA is undefined"
    with pytest.raises(SuiteError) as caught:
        core.rbf_gram(torch.ones(4, 3))
    assert str(caught.value) == "layer ?: median pairwise distance is 0; the RBF bandwidth is undefined"
