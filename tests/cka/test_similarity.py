"""The measures beside linear CKA (RBF CKA, angular Procrustes, mutual kNN) against float64
references computed from the features by other routes, their invariances, and their accumulation
over minibatches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from suite.cka import Options, compare_models
from suite.cka import core
from suite.cka.core import batch_hsic, cka_from_hsic, gram, u_gram
from suite.cka.similarity import (KNN_K, MeasureBatches, check_measures, gram_factors, knn_masks, knn_overlap,
                                  measure_from_batches, procrustes, rbf_grams)
from suite.errors import SuiteError

TOL = 1e-6
EPS64 = torch.finfo(torch.float64).eps  # these tests' Grams are formed from float64 features


def features(n=40, d=7, seed=0, shift=3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift  # a mean the measures must ignore


def centred(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=0, keepdim=True)


def grams(*xs) -> torch.Tensor:
    return torch.stack([gram(x) for x in xs])


# ----------------------------------------------------------------------------- references
def procrustes_reference(x, y) -> float:
    """cos θ = ‖X̄ᵀȲ‖_* / (‖X̄‖_F ‖Ȳ‖_F), the nuclear norm from the singular values."""
    xc, yc = centred(x), centred(y)
    return float(torch.linalg.svdvals(xc.T @ yc).sum() / (xc.norm() * yc.norm()))


def knn_reference(x, y, k=KNN_K) -> float:
    """Mutual k-NN overlap by explicit neighbour sets of the centred features' cosine similarity."""
    def neighbours(z):
        z = centred(z).numpy()
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        cos = z @ z.T
        np.fill_diagonal(cos, -np.inf)
        return [set(np.argsort(-row)[:k]) for row in cos]
    a, b = neighbours(x), neighbours(y)
    return float(np.mean([len(sa & sb) / k for sa, sb in zip(a, b)]))


def hsic1_reference(K: torch.Tensor, L: torch.Tensor) -> float:
    """Song et al.'s unbiased HSIC written term by term (zero-diagonal K, L)."""
    n = K.shape[0]
    K, L = K.clone(), L.clone()
    K.fill_diagonal_(0)
    L.fill_diagonal_(0)
    one = torch.ones(n, 1, dtype=torch.float64)
    return float((torch.trace(K @ L) + (one.T @ K @ one) * (one.T @ L @ one) / ((n - 1) * (n - 2))
                  - 2 / (n - 2) * (one.T @ K @ L @ one)) / (n * (n - 3)))


def rbf_cka_reference(x, y, frac=0.5) -> float:
    """RBF kernels from cdist with σ = frac x median off-diagonal distance, unbiased HSIC, CKA."""
    def kernel(z):
        D = torch.cdist(z, z)
        off = D[~torch.eye(len(z), dtype=torch.bool)]
        sigma = frac * off.median()
        return torch.exp(-D ** 2 / (2 * sigma ** 2))
    K, L = kernel(x), kernel(y)
    return hsic1_reference(K, L) / math.sqrt(hsic1_reference(K, K) * hsic1_reference(L, L))


# ----------------------------------------------------------------------------- against the references
def test_procrustes_matches_the_nuclear_norm_of_the_features():
    x, y = features(40, 7, 0), features(40, 11, 1) @ torch.randn(11, 11, dtype=torch.float64)
    got = procrustes(grams(x), grams(y), EPS64)
    assert got.shape == (1, 1)
    assert float(got) == pytest.approx(procrustes_reference(x, y), abs=TOL)
    assert float(procrustes(grams(x), grams(x), EPS64)) == pytest.approx(1.0, abs=TOL)


@pytest.mark.parametrize("threads", [1, 2])
def test_procrustes_of_several_layers_matches_the_reference_pair_by_pair_at_any_thread_count(threads):
    """Layers stacked on both sides, each pair against the features' nuclear norm; with 2 threads
    the rows are computed in parallel and must land in their own places."""
    xs = [features(30, d, s) for s, d in enumerate((4, 9, 6))]
    ys = [features(30, d, 10 + s) for s, d in enumerate((5, 8))]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = procrustes(torch.cat([grams(x) for x in xs]), torch.cat([grams(y) for y in ys]), EPS64)
    finally:
        torch.set_num_threads(before)
    expected = torch.tensor([[procrustes_reference(x, y) for y in ys] for x in xs], dtype=torch.float64)
    assert got.shape == (3, 2)
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def test_knn_overlap_matches_explicit_neighbour_sets():
    x = features(30, 5, 2)
    y = x + 0.3 * features(30, 5, 3)  # related but not the same: overlap strictly between 0 and 1
    got = float(knn_overlap(knn_masks(grams(x)), knn_masks(grams(y)), KNN_K))
    expected = knn_reference(x, y)
    assert 0.1 < expected < 0.95
    assert got == pytest.approx(expected, abs=TOL)


def test_rbf_cka_matches_cdist_kernels_and_the_termwise_unbiased_hsic():
    x, y = features(25, 6, 4), torch.tanh(features(25, 6, 5))
    Ra, Rb = rbf_grams(grams(x)), rbf_grams(grams(y))
    got = float(cka_from_hsic(*batch_hsic(Ra, Rb)))
    assert got == pytest.approx(rbf_cka_reference(x, y), abs=TOL)


# ----------------------------------------------------------------------------- invariances
def random_rotation(d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


@pytest.mark.parametrize("measure", ["linear-cka", "rbf-cka", "procrustes", "knn"])
def test_every_measure_ignores_rotations_and_isotropic_scaling(measure):
    """32 samples of 6 and 9 features: rank-deficient Grams (rank 5 and 8 after centring), the
    usual case at a narrow layer. Tolerance 1e-11 from the float64 precision of each route:
    n eps64 = 7e-15 on every Gram entry and eigenvalue, divided by the smallest kept eigenvalue
    relative to the largest (asserted >= 1e-2 below) for the square roots and the centring."""
    x, y = features(32, 6, 6), features(32, 9, 7)
    moved = 3.7 * (x @ random_rotation(6, 8)) - 5.0  # rotated, scaled and shifted
    for z in (x, y, moved):
        w = torch.linalg.eigvalsh(gram(z))
        kept = w[w > 32 * EPS64 * w[-1]]
        assert float(kept[0] / kept[-1]) >= 1e-2
    acc_a, acc_b = MeasureBatches(["linear-cka", measure], 1, 1), MeasureBatches(["linear-cka", measure], 1, 1)
    if measure == "linear-cka":
        first = cka_from_hsic(*batch_hsic(_u(x), _u(y)))
        second = cka_from_hsic(*batch_hsic(_u(moved), _u(y)))
    else:
        acc_a.add(grams(x), grams(y), EPS64)
        acc_b.add(grams(moved), grams(y), EPS64)
        first, second = acc_a.matrices()[measure], acc_b.matrices()[measure]
    assert float(second) == pytest.approx(float(first), abs=1e-11)


def rank_deficient(n: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """n samples of d < n features with a mean to ignore and unequal spreads."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.5, 3.0, d, dtype=torch.float64)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * scale + 2.0).to(dtype)


@pytest.mark.parametrize("n, d_a, d_b", [(32, 6, 9), (64, 10, 30), (128, 10, 500)])
def test_procrustes_of_rank_deficient_float64_grams_matches_the_svd_of_the_features(n, d_a, d_b):
    """Grams of rank d < n carry n - d eigenvalues of rounding noise (~ n eps64 λ_max); taking
    their square roots put ~3e-8 into the result, which then depended on the BLAS kernels (it
    failed a 1e-9 test under MKL_CBWR=COMPATIBLE). The reference: the float64 SVD of X̄ᵀȲ.
    Tolerance 1e-11: every kept eigenvalue is >= 1e-2 λ_max here, so each square root carries
    n eps64 / 1e-2 <= 3e-12 relative."""
    x = rank_deficient(n, d_a, 1)
    y = torch.tanh(x @ torch.randn(d_a, d_b, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    y = y + 0.1 * rank_deficient(n, d_b, 3)
    assert [f.shape[1] for f in gram_factors(grams(x, y), EPS64)] == [d_a, min(d_b, n - 1)]  # ranks after centring
    got = float(procrustes(grams(x), grams(y), EPS64))
    assert got == pytest.approx(procrustes_reference(x, y), abs=1e-11)


@pytest.mark.parametrize("n, d_a, d_b", [(64, 10, 200), (256, 10, 4096)])
def test_procrustes_of_float32_grams_of_a_narrow_layer_matches_the_svd_of_the_features(n, d_a, d_b, matmul_highest):
    """The CKA engine forms Grams of float32 features in float32 (core.gram): noise eigenvalues
    of ~ n eps32 λ_max, whose square roots put 5e-5 to 1e-4 into the measure before the rank
    threshold. The reference: the float64 SVD of the same float32 features. Tolerance 1e-5:
    a float32 Gram entry carries <= d eps32 of the largest (a sum of d products), and a kept
    eigenvalue is >= n eps32 λ_max, so a square root moves by at most d eps32 / (2 sqrt(n eps32))
    relative = 2e-5 for d = 200, n = 64 in the worst case; measured about 1e-7."""
    x = rank_deficient(n, d_a, 4, torch.float32)
    w = torch.randn(d_a, d_b, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    y = torch.relu(x.double() @ w + 0.5 * rank_deficient(n, d_b, 6)).float()
    assert core.gram_dtype(x) == torch.float32
    got = float(procrustes(core.gram(x)[None], core.gram(y)[None]))  # default eps: float32's
    assert got == pytest.approx(procrustes_reference(x.double(), y.double()), abs=1e-5)


def _u(x):
    return u_gram(x).unsqueeze(0)  # [1, n²]: one layer's U-centred Gram


# ----------------------------------------------------------------------------- accumulation
def test_cka_type_measures_sum_hsic_and_the_others_average_over_batches():
    xs = [features(20, 5, s) for s in (10, 11)]
    ys = [torch.relu(x @ random_rotation(5, 12)) + 0.1 * features(20, 5, s + 20) for s, x in zip((10, 11), xs)]
    acc = MeasureBatches(["linear-cka", "rbf-cka", "procrustes", "knn"], 1, 1)
    for x, y in zip(xs, ys):
        acc.add(grams(x), grams(y), EPS64)
    m = acc.matrices()
    assert float(m["procrustes"]) == pytest.approx(np.mean([procrustes_reference(x, y) for x, y in zip(xs, ys)]), abs=TOL)
    assert float(m["knn"]) == pytest.approx(np.mean([knn_reference(x, y) for x, y in zip(xs, ys)]), abs=TOL)
    # RBF CKA: the per-batch HSIC are summed before the ratio (not a mean of per-batch CKAs)
    h = [(hsic1_reference(*k), hsic1_reference(k[0], k[0]), hsic1_reference(k[1], k[1]))
         for k in ([_kernel(x), _kernel(y)] for x, y in zip(xs, ys))]
    expected = sum(a for a, _, _ in h) / math.sqrt(sum(b for _, b, _ in h) * sum(c for _, _, c in h))
    assert float(m["rbf-cka"]) == pytest.approx(expected, abs=TOL)


def _kernel(z, frac=0.5):
    D = torch.cdist(z, z)
    sigma = frac * D[~torch.eye(len(z), dtype=torch.bool)].median()
    return torch.exp(-D ** 2 / (2 * sigma ** 2))


def test_replicate_counts_weigh_the_batches():
    """Drawing batch 0 twice and batch 1 never is the measure of batch 0 alone (twice the HSIC
    in numerator and denominators; twice the value in the mean)."""
    batches = {"hsic_ab": torch.tensor([[[2.0]], [[1.0]]], dtype=torch.float64),
               "hsic_aa": torch.tensor([[4.0], [1.0]], dtype=torch.float64),
               "hsic_bb": torch.tensor([[1.0], [9.0]], dtype=torch.float64)}
    counts = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    reps = measure_from_batches(batches, counts)
    assert reps.shape == (2, 1, 1)
    assert float(reps[0]) == pytest.approx(2 / math.sqrt(4 * 1), abs=1e-12)
    assert float(reps[1]) == pytest.approx(3 / math.sqrt(5 * 10), abs=1e-12)
    values = {"value": torch.tensor([[[0.2]], [[0.8]]], dtype=torch.float64)}
    assert measure_from_batches(values, counts).flatten().tolist() == pytest.approx([0.2, 0.5], abs=1e-12)


def test_compare_models_gives_every_measure_from_one_pass():
    torch.manual_seed(0)
    a, b = nn.Sequential(nn.Linear(6, 8), nn.ReLU()), nn.Sequential(nn.Linear(6, 5), nn.Tanh())
    batches = [torch.rand(16, 6, generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    result = compare_models(a, b, batches, ["1"], ["1"],
                            stream=Options(measures=("linear-cka", "procrustes", "knn", "rbf-cka")))
    with torch.no_grad():
        feats = [(a(x).double(), b(x).double()) for x in batches]
    assert float(result.of("procrustes")) == pytest.approx(np.mean([procrustes_reference(p, q) for p, q in feats]),
                                                           abs=1e-5)  # float32 forward features
    assert float(result.of("knn")) == pytest.approx(np.mean([knn_reference(p, q) for p, q in feats]), abs=1e-5)
    assert result.batches["procrustes"]["value"].shape == (2, 1, 1)
    assert result.batches["linear-cka"]["hsic_ab"].shape == (2, 1, 1)


@pytest.mark.parametrize("measures, message", [
    (("linear-cka", "cosine"), "unknown measure 'cosine'; choose from: linear-cka, rbf-cka, procrustes, knn"),
    (("procrustes",), "--measure must include linear-cka"),
    (("linear-cka", "knn", "knn"), "--measure names a measure twice"),
])
def test_measure_names_are_checked(measures, message):
    with pytest.raises(SuiteError, match=f"^{message}"):
        check_measures(measures)
