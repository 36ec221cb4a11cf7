"""Similarity measures beside linear CKA, each computed per minibatch from the batch-centred Gram
K = X Xᵀ (X a layer's features [n, d] minus their batch mean) that the CKA engine forms anyway
(suite.cka.grams), so one forward pass serves every measure. Linear CKA is known to be swayed by
a few dominant samples or directions (Davari et al., "Reliability of CKA as a Similarity Measure
in Deep Learning", ICLR 2023), biased at few samples per feature (Murphy, Zylberberg and Fyshe,
2024) and blind to low-variance components that matter (Ding, Denain and Steinhardt, "Grounding
Representation Similarity with Statistical Testing", NeurIPS 2021); a finding that holds under
several measures does not rest on one of those.

    linear-cka  the unbiased minibatch CKA of suite.cka.core (the default)
    rbf-cka     CKA with the RBF kernel k(x, y) = exp(-|x - y|² / (2 σ²)), σ = 0.5 x the median
                pairwise distance within the batch (Kornblith et al., "Similarity of Neural
                Network Representations Revisited", ICML 2019, use 0.2 to 0.8; `core.rbf_gram`),
                squared distances read off the Gram, D²_ij = K_ii + K_jj - 2 K_ij; unbiased HSIC
                summed over minibatches, as linear CKA
    procrustes  angular Procrustes similarity: the cosine of the shape metric of Williams, Kunz,
                Kornblith and Linderman ("Generalized Shape Metrics on Neural Representations",
                NeurIPS 2021) with rotations as the group, on centred features:
                    cos θ = ‖Xᵀ Y‖_* / (‖X‖_F ‖Y‖_F) = Σ_i √λ_i(K^½ L K^½) / √(tr K · tr L),
                the nuclear norm from the Grams (its square roots of eigenvalues are the
                singular values of Xᵀ Y: Harvey, Larsen and Williams 2023, normalised Bures
                similarity), computed as ‖Aᵀ B‖_* from factors K = A Aᵀ, L = B Bᵀ on the
                eigenvalues the Grams resolve (`procrustes`); 1 when one representation is a
                rotation and scaling of the other; mean over minibatches
    knn         mutual k-nearest-neighbour overlap (Huh, Cheung, Wang and Isola, "The Platonic
                Representation Hypothesis", ICML 2024), k = 10: per sample, the share of its k
                nearest neighbours (cosine similarity K_ij / √(K_ii K_jj), itself excluded)
                that both representations have in common; mean over samples and minibatches.
                Chance is about k / (n - 1) for minibatches of n. Unlike Huh et al., the
                features are centred (the one Gram serves every measure) and not clipped.

Each is invariant to an orthogonal transform and an isotropic scaling of either representation.
A measure a layer cannot have (no spread at all) is NaN.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import torch
from torch import Tensor

from suite import distributed
from suite.cka.core import batch_hsic, cka_from_hsic, rbf_from_gram, u_centre
from suite.errors import SuiteError

MEASURES = ("linear-cka", "rbf-cka", "procrustes", "knn")
RBF_SIGMA_FRAC = 0.5  # the suite's RBF bandwidth: 0.5 x the median pairwise distance (core.rbf_gram)
KNN_K = 10  # Huh et al.'s default k


def check_measures(measures: Sequence[str]) -> None:
    """Known names, linear CKA among them (every result carries it), no repeats."""
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise SuiteError(f"unknown measure {unknown[0]!r}; choose from: {', '.join(MEASURES)}")
    if "linear-cka" not in measures:
        raise SuiteError("--measure must include linear-cka (every CKA result holds it)")
    if len(set(measures)) != len(measures):
        raise SuiteError("--measure names a measure twice")


def rbf_grams(K: Tensor) -> Tensor:
    """Flattened U-centred RBF Grams of a stack of centred Grams [L, n, n] -> [L, n²]; NaN rows
    where a layer has no spread (the bandwidth is undefined)."""
    rows = []
    for k in K:
        r = rbf_from_gram(k, RBF_SIGMA_FRAC)
        rows.append(u_centre(r).flatten() if r is not None else torch.full((k.numel(),), float("nan"),
                                                                          dtype=torch.float64, device=K.device))
    return torch.stack(rows)


EPS32 = torch.finfo(torch.float32).eps  # the unit roundoff of the Grams the CKA engine forms (core.gram_dtype)


def gram_factors(K: Tensor, eps: float = EPS32) -> list[Tensor]:
    """For each centred Gram of a stack [L, n, n], a factor A [n, r] with A Aᵀ = K on the
    eigenvalues that K resolves: those above n eps λ_max, the rank tolerance of
    numpy.linalg.matrix_rank (S.max() * max(M, N) * eps; Press et al., Numerical Recipes,
    2nd ed., §2.6) with eps the unit roundoff of the arithmetic that formed K. Below it an
    eigenvalue is rounding noise: a Gram of rank r < n (fewer features than samples, the usual
    case at a classifier) has n - r of them, about ±eps λ_max, and their square roots (~√eps
    each) would enter the nuclear norm."""
    w, V = torch.linalg.eigh(K)  # ascending: w[..., -1] is λ_max
    keep = w > K.shape[-1] * eps * w[..., -1:]
    return [V[i][:, keep[i]] * w[i][keep[i]].sqrt() for i in range(K.shape[0])]


def procrustes(Ka: Tensor, Kb: Tensor, eps: float = EPS32) -> Tensor:
    """Angular Procrustes similarity of every pair from centred Grams [La, n, n], [Lb, n, n] ->
    [La, Lb] float64 (module docstring); NaN where a layer has no spread. `eps`: the unit
    roundoff the Grams were formed in (float32's by default, as the CKA engine forms them).

    With K = A Aᵀ and L = B Bᵀ (`gram_factors`), X = A Q and Y = B P for isometries Q, P, so
    ‖Xᵀ Y‖_* = ‖Aᵀ B‖_*: the singular values of the small [r_a, r_b] product, computed
    directly. Eigenvalues of K^½ L K^½ (the form in the module docstring) would take a square
    root of every rounding-noise eigenvalue instead. Measured against the float64 SVD of the
    centred features on rank-deficient layers (n = 64..256, d = 10 against 200..4096):
    float32 Grams 5e-5 to 1e-4 off that way, under 1e-7 this way; float64 Grams 3e-8 and 1e-15.
    """
    A, B = gram_factors(Ka, eps), gram_factors(Kb, eps)
    tr_a = Ka.diagonal(dim1=-2, dim2=-1).sum(-1)  # [La]
    tr_b = Kb.diagonal(dim1=-2, dim2=-1).sum(-1)  # [Lb]

    def row(i: int) -> Tensor:
        nuclear = torch.stack([torch.linalg.svdvals(A[i].T @ b).sum() for b in B])  # [Lb]
        return nuclear / torch.sqrt(tr_a[i] * tr_b)

    # an SVD per pair of layers, the measure's whole cost; one after another on one core, so
    # the rows go to torch's threads (on CUDA each is already parallel)
    workers = torch.get_num_threads() if Ka.device.type == "cpu" else 1
    if workers > 1 and Ka.shape[0] > 1:
        with ThreadPoolExecutor(workers) as pool:
            out = torch.stack(list(pool.map(row, range(Ka.shape[0]))))
    else:
        out = torch.stack([row(i) for i in range(Ka.shape[0])])
    denom_ok = (tr_a[:, None] > 0) & (tr_b[None, :] > 0)
    return torch.where(denom_ok, out.clamp(max=1.0), torch.full_like(out, float("nan")))


def knn_masks(K: Tensor, k: int = KNN_K) -> Tensor:
    """Each sample's k nearest neighbours by cosine similarity, itself excluded: [L, n, n] -> [L, n, n]
    float64 masks (k ones per row); a sample with no spread has no neighbours (a zero row)."""
    n = K.shape[-1]
    k = min(k, n - 1)
    norms = K.diagonal(dim1=-2, dim2=-1).clamp(min=0).sqrt()  # [L, n]
    cos = K / (norms.unsqueeze(-1) * norms.unsqueeze(-2))
    cos = torch.where(torch.isfinite(cos), cos, torch.full_like(cos, -torch.inf))
    cos.diagonal(dim1=-2, dim2=-1).fill_(-torch.inf)
    top = cos.topk(k, dim=-1).indices  # [L, n, k]
    masks = torch.zeros_like(K).scatter_(-1, top, 1.0)
    return masks * (norms > 0).unsqueeze(-1)


def knn_overlap(Ma: Tensor, Mb: Tensor, k: int) -> Tensor:
    """Mutual neighbour overlap of every pair of layers from their masks: [La, Lb]."""
    n = Ma.shape[-1]
    return (Ma.flatten(1) @ Mb.flatten(1).T) / (n * min(k, n - 1))


class MeasureBatches:
    """Per-minibatch values of the measures beside linear CKA for La x Lb layer pairs.

    `add(Ka, Kb, eps)` takes one batch's centred Grams ([La, n, n], [Lb, n, n]; Kb None: the same
    layers on both sides). CKA-type measures keep their HSIC values (summed like linear CKA);
    the others their per-batch value (averaged). `matrices()` gives [La, Lb] per measure,
    `batches()` the per-batch values a bootstrap resamples.
    """

    def __init__(self, measures: Sequence[str], n_layers_a: int, n_layers_b: int, k: int = KNN_K):
        self.measures = [m for m in measures if m != "linear-cka"]
        self.shape, self.k = (n_layers_a, n_layers_b), k
        self.values: dict[str, list] = {m: [] for m in self.measures}

    def add(self, Ka: Tensor, Kb: Tensor | None = None, eps: float = EPS32) -> None:
        """`eps`: the unit roundoff the Grams were formed in (`LayerGrams.eps`)."""
        same = Kb is None
        Kb = Ka if same else Kb
        for m in self.measures:
            if m == "rbf-cka":
                Ra = rbf_grams(Ka)
                self.values[m].append(batch_hsic(Ra, None if same else rbf_grams(Kb)))
            elif m == "procrustes":
                self.values[m].append(procrustes(Ka, Kb, eps).cpu())
            else:
                Ma = knn_masks(Ka, self.k)
                self.values[m].append(knn_overlap(Ma, Ma if same else knn_masks(Kb, self.k), self.k).cpu())

    def all_reduce(self) -> None:
        """Gather every process's batches in rank order (batch order); nothing to do in one process."""
        if distributed.world_size() > 1:
            for m in self.measures:
                self.values[m] = [b for share in distributed.all_gather_objects(self.values[m]) for b in share]

    def batches(self) -> dict[str, dict[str, Tensor]]:
        """measure -> {"hsic_ab", "hsic_aa", "hsic_bb"} (CKA-type) or {"value"}: [batches, ...]."""
        out = {}
        for m, vals in self.values.items():
            if m == "rbf-cka":
                out[m] = {key: torch.stack([v[j] for v in vals]) for j, key in enumerate(("hsic_ab", "hsic_aa", "hsic_bb"))}
            else:
                out[m] = {"value": torch.stack(vals)}
        return out

    def matrices(self) -> dict[str, Tensor]:
        return {m: measure_from_batches(b) for m, b in self.batches().items()}


def measure_from_batches(batches: dict[str, Tensor], counts: Tensor | None = None) -> Tensor:
    """A measure's matrix from its per-batch values, each batch counted `counts[j]` times
    (None: once): CKA from summed HSIC, or the weighted mean of the per-batch values. A leading
    replicate axis in `counts` ([R, batches]) gives one matrix per replicate."""
    if "value" in batches:
        v = batches["value"]  # [k, ...]
        if counts is None:
            return v.mean(dim=0)
        w = counts.to(v.dtype)
        return (w @ v.flatten(1)).view(*w.shape[:-1], *v.shape[1:]) / w.sum(-1).view(-1, *([1] * (v.dim() - 1)))
    ab, aa, bb = batches["hsic_ab"], batches["hsic_aa"], batches["hsic_bb"]
    if counts is None:
        return cka_from_hsic(ab.sum(0), aa.sum(0), bb.sum(0))
    w = counts.to(ab.dtype)
    return cka_from_hsic(*((w @ t.flatten(1)).view(*w.shape[:-1], *t.shape[1:]) for t in (ab, aa, bb)))
