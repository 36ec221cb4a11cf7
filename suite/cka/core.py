"""U-centred minibatch CKA: unbiased HSIC for all layer pairs at once, accumulated in float64.

Linear CKA with the unbiased HSIC estimator of Nguyen, Raghu & Kornblith (2021, Eq. 3),
averaged over minibatches. For one batch of n >= 4 samples and a layer with features
X [n, d] (flattened), the Gram matrix is K = X Xᵀ. Its U-centred form is

    K̃_ij = K_ij - 1/(n-2) Σ_l K_il - 1/(n-2) Σ_k K_kj + 1/((n-1)(n-2)) Σ_kl K_kl   (i ≠ j)
    K̃_ii = 0

where the sums run over K with its diagonal set to zero. Then (Song et al. 2012)

    HSIC_1(K, L) = <K̃, L̃>_F / (n (n-3))

equals Eq. 3 of the paper,
    1/(n(n-3)) [ tr(K L) + 1ᵀK1 1ᵀL1 / ((n-1)(n-2)) - 2/(n-2) 1ᵀ K L 1 ]  (K, L zero-diagonal),
but costs O(n²) per layer pair instead of O(n³): HSIC for *all* pairs is one product
[La, n²] @ [n², Lb] of the flattened U-centred Grams. Over k minibatches the HSIC values
are averaged (HSIC, not CKA, is the estimator), then

    CKA(a, b) = mean HSIC(K, L) / sqrt(mean HSIC(K, K) · mean HSIC(L, L)).

A layer whose self-HSIC is 0 (constant features) has an undefined CKA, returned as NaN.

Precision. U-centring is invariant to adding a constant vector to every sample, so each
layer's batch mean is subtracted first; without it the large mean term of ReLU features
cancels catastrophically in the centring. Measured on a 24-layer random ReLU stack
(tests/cka/test_cka_core.py::deep_relu_stack, n=256, d=2048, mean/spread ~400 at the last layer),
max CKA deviation from float64 Grams: raw float32 Grams 1.1e-2, float32 Grams of
mean-subtracted features 2.7e-9 (docs/design.md: 0.12 vs 2e-9 on a conv stack). A float32 Gram
costs about half a float64 one (n=256, d=4096, one CPU thread: 13 ms vs 25 ms), so Grams
are formed in float32 for float32/half inputs and in float64 for float64 inputs; U-centring
and all HSIC sums are float64. Where float32 matmuls may run at reduced precision (TF32 on
CUDA, bf16 or TF32 through oneDNN on the CPU), Grams use float64 (`gram_dtype`).

Why not torch_cka (the `bench` extra): it evaluates Eq. 3 with trace(K L) per pair (O(n³)),
in float32 on raw Grams, and never removes its hooks.

`rbf_cka_matrix` is the RBF-kernel variant for one batch (see its docstring).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from suite import distributed
from suite.errors import SuiteError

MIN_SAMPLES = 4  # the unbiased estimator divides by n(n-3) and (n-1)(n-2)


# ----------------------------------------------------------------------------- Grams

def _float32_matmul_is_exact(device: torch.device) -> bool:
    """False when a float32 matmul on `device` may run at reduced precision: TF32 (10-bit
    mantissa) on CUDA; on the CPU, bf16 or TF32 through oneDNN, which
    `torch.set_float32_matmul_precision("medium")` turns on (measured on a CPU with AMX: a
    float32 Gram then deviates by 2.7e-4 relative, against 2.6e-7 at "highest")."""
    if device.type == "cuda":
        try:
            return not torch.backends.cuda.matmul.allow_tf32
        except RuntimeError:  # torch refuses to answer when legacy and new TF32 APIs were mixed
            return False
    onednn = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    precision = getattr(onednn, "fp32_precision", None)
    if precision is None:  # a torch without the per-backend switch: the global one
        return torch.get_float32_matmul_precision() == "highest"
    return precision in ("ieee", "none")


def gram_dtype(x: Tensor) -> torch.dtype:
    """The dtype the Gram of features `x` is formed in: float64 for float64 features, or where a
    float32 matmul may run at reduced precision; float32 otherwise. Its unit roundoff bounds
    what the Gram resolves (suite.cka.similarity thresholds eigenvalues by it)."""
    exact32 = x.dtype != torch.float64 and _float32_matmul_is_exact(x.device)
    return torch.float32 if exact32 else torch.float64


def gram(x: Tensor, name: str = "?") -> Tensor:
    """Linear Gram matrix of mean-subtracted features: x [n, ...] -> K [n, n] float64.

    NaN/inf are refused on K, not x: a non-finite feature makes its column mean, hence every
    entry of K, non-finite, and checking n² entries instead of n*d is cheaper when d > n.
    """
    x = x.detach().flatten(1)  # [n, d]
    x = x.to(gram_dtype(x))
    x = x - x.mean(dim=0, keepdim=True)  # U-centring ignores it; float32 Grams need it
    K = x @ x.T  # [n, n]
    if not torch.isfinite(K).all():
        raise SuiteError(f"features of layer {name} contain NaN or inf (or overflow the Gram); CKA is undefined")
    return K.double()


def u_centre(K: Tensor) -> Tensor:
    """U-centre a Gram matrix (or a stack of them): [..., n, n] -> [..., n, n] float64."""
    n = K.shape[-1]
    K = K.double().clone()
    K.diagonal(dim1=-2, dim2=-1).zero_()  # sums below run over the off-diagonal entries
    row = K.sum(dim=-1, keepdim=True) / (n - 2)  # [..., n, 1]
    col = K.sum(dim=-2, keepdim=True) / (n - 2)  # [..., 1, n]
    total = K.sum(dim=(-2, -1), keepdim=True) / ((n - 1) * (n - 2))  # [..., 1, 1]
    Kt = K - row - col + total
    Kt.diagonal(dim1=-2, dim2=-1).zero_()
    return Kt


def u_gram(x: Tensor, name: str = "?") -> Tensor:
    """One layer's U-centred linear Gram, flattened: x [n, ...] -> [n²] float64."""
    return u_centre(gram(x, name)).flatten()


def _u_grams(feats: Sequence[Tensor], names: Sequence[str]) -> Tensor:
    """Flattened U-centred linear Grams of every layer: L x [n, ...] -> [L, n²] float64."""
    return torch.stack([u_gram(x, name) for x, name in zip(feats, names)])


def batch_hsic(Ka: Tensor, Kb: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Unbiased HSIC of one batch for every layer pair, from flattened U-centred Grams.

    Ka [La, n²], Kb [Lb, n²] (None or Ka itself: a self-comparison, the self-HSIC computed
    once) -> hsic_ab [La, Lb], hsic_aa [La], hsic_bb [Lb], float64 on the CPU.
    """
    n = math.isqrt(Ka.shape[1])
    same = Kb is None or Kb is Ka
    Kb = Ka if same else Kb
    hsic_ab = (Ka @ Kb.T) / (n * (n - 3))  # [La, Lb]
    hsic_aa = (Ka * Ka).sum(dim=1) / (n * (n - 3))  # [La]
    hsic_bb = hsic_aa if same else (Kb * Kb).sum(dim=1) / (n * (n - 3))  # [Lb]
    return hsic_ab.cpu(), hsic_aa.cpu(), hsic_bb.cpu()


def _batch_size(feats: Sequence[Tensor], names: Sequence[str], side: str) -> int:
    """The common sample count n of one side's layers; n >= 4 is required."""
    if len(feats) == 0:
        raise SuiteError(f"no layers given for model {side}")
    sizes = {name: int(x.shape[0]) for x, name in zip(feats, names)}
    n = next(iter(sizes.values()))
    if any(s != n for s in sizes.values()):
        raise SuiteError(f"layers of model {side} disagree on the number of samples: {sizes}")
    if n < MIN_SAMPLES:
        raise SuiteError(
            f"batch of {n} samples; the unbiased estimator needs n >= {MIN_SAMPLES}; "
            f"choose --samples/--batch-size so every batch has >= {MIN_SAMPLES}"
        )
    return n


def _names(names: Sequence[str] | None, count: int, side: str) -> list[str]:
    if names is None:
        return [f"{side}[{i}]" for i in range(count)]
    if len(names) != count:
        raise SuiteError(f"{len(names)} names given for {count} layers of model {side}")
    return list(names)


# ----------------------------------------------------------------------------- accumulator

class MinibatchCKA:
    """Accumulates unbiased HSIC over minibatches for La x Lb layer pairs.

    update(feats_a, feats_b) adds one batch (or `add` its HSIC values, see `batch_hsic`);
    compute() gives CKA [La, Lb] float64. Sums (`sum_ab` [La, Lb], `sum_aa` [La], `sum_bb`
    [Lb]) add exactly, so `all_reduce` (torchrun), `merge` and `state_dict` (resumed runs)
    combine partial runs; `hsic_ab`/`hsic_aa`/`hsic_bb` are the per-batch means. With
    keep_batches=True the per-batch HSIC values are kept for `bootstrap_ci`.
    """

    def __init__(
        self,
        n_layers_a: int,
        n_layers_b: int,
        keep_batches: bool = False,
        names_a: Sequence[str] | None = None,
        names_b: Sequence[str] | None = None,
    ):
        self.n_layers_a, self.n_layers_b = n_layers_a, n_layers_b
        self.names_a = _names(names_a, n_layers_a, "a")
        self.names_b = _names(names_b, n_layers_b, "b")
        self.keep_batches = keep_batches
        self.sum_ab = torch.zeros(n_layers_a, n_layers_b, dtype=torch.float64)
        self.sum_aa = torch.zeros(n_layers_a, dtype=torch.float64)
        self.sum_bb = torch.zeros(n_layers_b, dtype=torch.float64)
        self.n_samples = 0
        self.n_batches = 0
        self.batches: list[tuple[Tensor, Tensor, Tensor]] = []  # (hsic_ab, hsic_aa, hsic_bb)

    @torch.no_grad()
    def update(self, feats_a: Sequence[Tensor], feats_b: Sequence[Tensor] | None = None) -> None:
        """Add one batch. feats_b None (or the same list as feats_a) means a self-comparison."""
        same = feats_b is None or feats_b is feats_a
        feats_b = feats_a if same else feats_b
        if len(feats_a) != self.n_layers_a or len(feats_b) != self.n_layers_b:
            raise SuiteError(
                f"got {len(feats_a)} x {len(feats_b)} layers, "
                f"expected {self.n_layers_a} x {self.n_layers_b}"
            )
        n = _batch_size(feats_a, self.names_a, "a")
        n_b = _batch_size(feats_b, self.names_b, "b")
        if n != n_b:
            raise SuiteError(f"model a saw {n} samples and model b {n_b} in the same batch")

        Ka = _u_grams(feats_a, self.names_a)  # [La, n²]
        Kb = None if same else _u_grams(feats_b, self.names_b)  # [Lb, n²]
        self.add(*batch_hsic(Ka, Kb), n)

    def add(self, hsic_ab: Tensor, hsic_aa: Tensor, hsic_bb: Tensor, n: int) -> None:
        """Add one batch of n samples given its HSIC values (`batch_hsic`): the one accumulation step."""
        if hsic_ab.shape != (self.n_layers_a, self.n_layers_b):
            raise SuiteError(f"HSIC of {tuple(hsic_ab.shape)} layer pairs for an accumulator of "
                             f"{self.n_layers_a} x {self.n_layers_b}")
        self.sum_ab += hsic_ab
        self.sum_aa += hsic_aa
        self.sum_bb += hsic_bb
        self.n_samples += n
        self.n_batches += 1
        if self.keep_batches:
            self.batches.append((hsic_ab, hsic_aa, hsic_bb))

    @property
    def hsic_ab(self) -> Tensor:
        return self.sum_ab / max(self.n_batches, 1)  # [La, Lb]

    @property
    def hsic_aa(self) -> Tensor:
        return self.sum_aa / max(self.n_batches, 1)  # [La]

    @property
    def hsic_bb(self) -> Tensor:
        return self.sum_bb / max(self.n_batches, 1)  # [Lb]

    def compute(self) -> Tensor:
        """CKA [La, Lb] float64 from the accumulated HSIC (NaN where a self-HSIC is <= 0)."""
        if self.n_batches == 0:
            raise SuiteError("no batches were accumulated; CKA needs at least one batch")
        return cka_from_hsic(self.sum_ab, self.sum_aa, self.sum_bb)

    def merge(self, other: "MinibatchCKA") -> "MinibatchCKA":
        """Add another accumulator's batches into this one (exact: sums add)."""
        if (other.n_layers_a, other.n_layers_b) != (self.n_layers_a, self.n_layers_b):
            raise SuiteError("cannot merge CKA accumulators over different layer sets")
        self.sum_ab += other.sum_ab
        self.sum_aa += other.sum_aa
        self.sum_bb += other.sum_bb
        self.n_samples += other.n_samples
        self.n_batches += other.n_batches
        self.batches += other.batches
        return self

    def all_reduce(self) -> None:
        """Sum the accumulators over the torchrun processes; nothing to do in one process.

        Each process has accumulated its share of the batches (contiguous blocks in rank
        order, `distributed.shard`); afterwards every process holds the float64 sums over all
        batches, the single-process sums up to the order of additions. With keep_batches the
        per-batch HSIC values are gathered too, in rank order, which is batch order, so
        `bootstrap_ci` resamples exactly the batches of a one-process run.
        """
        if distributed.world_size() == 1:
            return
        La, Lb = self.n_layers_a, self.n_layers_b
        flat = distributed.all_reduce_sum(torch.cat([
            self.sum_ab.flatten(), self.sum_aa, self.sum_bb,
            torch.tensor([self.n_samples, self.n_batches], dtype=torch.float64),
        ]))
        self.sum_ab = flat[: La * Lb].view(La, Lb).clone()
        self.sum_aa = flat[La * Lb : La * Lb + La].clone()
        self.sum_bb = flat[La * Lb + La : La * Lb + La + Lb].clone()
        self.n_samples, self.n_batches = int(flat[-2]), int(flat[-1])
        if self.keep_batches:
            self.batches = [b for share in distributed.all_gather_objects(self.batches) for b in share]

    def state_dict(self) -> dict:
        return {
            "names_a": self.names_a, "names_b": self.names_b,
            "sum_ab": self.sum_ab, "sum_aa": self.sum_aa, "sum_bb": self.sum_bb,
            "n_samples": self.n_samples, "n_batches": self.n_batches,
        }

    @classmethod
    def from_state(cls, state: dict) -> "MinibatchCKA":
        acc = cls(len(state["names_a"]), len(state["names_b"]),
                  names_a=state["names_a"], names_b=state["names_b"])
        acc.sum_ab = state["sum_ab"].double().clone()
        acc.sum_aa = state["sum_aa"].double().clone()
        acc.sum_bb = state["sum_bb"].double().clone()
        acc.n_samples, acc.n_batches = int(state["n_samples"]), int(state["n_batches"])
        return acc

    def bootstrap_ci(self, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[Tensor, Tensor]:
        """Percentile bootstrap interval of CKA over minibatches: (lo, hi), each [La, Lb].

        Each replicate draws n_batches batches with replacement, averages their HSIC values
        and forms CKA from the averages, exactly like `compute`.
        """
        if not self.keep_batches:
            raise SuiteError("bootstrap intervals need MinibatchCKA(..., keep_batches=True)")
        k = len(self.batches)
        if k < 2:
            raise SuiteError(f"bootstrap intervals need at least 2 minibatches, got {k}")
        ab = torch.stack([b[0] for b in self.batches])  # [k, La, Lb]
        aa = torch.stack([b[1] for b in self.batches])  # [k, La]
        bb = torch.stack([b[2] for b in self.batches])  # [k, Lb]
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(k, (n_boot, k), generator=g)  # [n_boot, k]
        # counts[r, j] = how often batch j was drawn in replicate r; sums of HSIC per replicate
        counts = torch.zeros(n_boot, k, dtype=torch.float64).scatter_add_(
            1, idx, torch.ones(n_boot, k, dtype=torch.float64))
        s_ab = (counts @ ab.flatten(1)).view(n_boot, *ab.shape[1:])  # [n_boot, La, Lb]
        s_aa = counts @ aa  # [n_boot, La]
        s_bb = counts @ bb  # [n_boot, Lb]
        cka = s_ab / torch.sqrt(s_aa[:, :, None] * s_bb[:, None, :])  # [n_boot, La, Lb]
        q = torch.tensor([(1 - level) / 2, 1 - (1 - level) / 2], dtype=torch.float64)
        lo, hi = torch.nanquantile(cka, q, dim=0)  # [La, Lb] each
        return lo, hi


def cka_from_hsic(hsic_ab: Tensor, hsic_aa: Tensor, hsic_bb: Tensor) -> Tensor:
    """CKA = HSIC(K,L) / sqrt(HSIC(K,K) HSIC(L,L)): [La, Lb], [La], [Lb] -> [La, Lb].

    Works on sums or means alike (the normalisation cancels), and on stacks: leading axes of
    all three broadcast ([L, T, T] with [L, T], [L, T] for time comparisons; a replicate axis).
    NaN where a self-HSIC <= 0.
    """
    denom = torch.sqrt(hsic_aa.unsqueeze(-1).clamp(min=0) * hsic_bb.unsqueeze(-2).clamp(min=0))
    return torch.where(denom > 0, hsic_ab / denom, torch.full_like(hsic_ab, float("nan")))


def cka_matrix(
    feats_a: Sequence[Tensor],
    feats_b: Sequence[Tensor] | None = None,
    names_a: Sequence[str] | None = None,
    names_b: Sequence[str] | None = None,
) -> Tensor:
    """Linear CKA of one batch for every pair of layers: La x [n, ...], Lb x [n, ...] -> [La, Lb]."""
    feats_b = feats_a if feats_b is None else feats_b
    acc = MinibatchCKA(len(feats_a), len(feats_b), names_a=names_a, names_b=names_b)
    acc.update(feats_a, feats_b)
    return acc.compute()


# ----------------------------------------------------------------------------- RBF kernel

def rbf_from_gram(K: Tensor, sigma_frac: float = 0.5) -> Tensor | None:
    """RBF Gram exp(-|x_i - x_j|² / (2 σ²)) from a linear Gram K [n, n] of the features (squared
    distances K_ii + K_jj - 2 K_ij), σ = sigma_frac · median pairwise distance (off the diagonal);
    None where that median is 0 (no spread: the bandwidth is undefined)."""
    sq = (K.diagonal()[:, None] + K.diagonal()[None, :] - 2 * K).clamp(min=0)  # [n, n]
    n = sq.shape[0]
    off = sq[~torch.eye(n, dtype=torch.bool, device=sq.device)]  # [n(n-1)] off-diagonal
    sigma = sigma_frac * off.sqrt().median()
    if sigma <= 0:
        return None
    return torch.exp(-sq / (2 * sigma**2))


def rbf_gram(x: Tensor, sigma_frac: float = 0.5, name: str = "?") -> Tensor:
    """RBF Gram exp(-|x_i - x_j|² / (2 σ²)), σ = sigma_frac · median pairwise distance: [n, n]."""
    K = rbf_from_gram(gram(x, name), sigma_frac)  # the linear Gram of centred features: distances don't see the mean
    if K is None:
        raise SuiteError(f"layer {name}: median pairwise distance is 0; the RBF bandwidth is undefined")
    return K


def rbf_cka_matrix(
    feats_a: Sequence[Tensor],
    feats_b: Sequence[Tensor] | None = None,
    sigma_frac: float = 0.5,
    names_a: Sequence[str] | None = None,
    names_b: Sequence[str] | None = None,
) -> Tensor:
    """RBF-kernel CKA of one batch: La x [n, ...], Lb x [n, ...] -> [La, Lb] float64.

    Kernel k(x, y) = exp(-|x - y|² / (2 σ²)) with σ = sigma_frac times the median pairwise
    distance within the batch (Kornblith et al. 2019 use 0.2-0.8); then the same U-centring
    and unbiased HSIC as the linear version. The bandwidth depends on the batch, so this is a
    single-batch estimate; `MinibatchCKA` is linear only.
    """
    feats_b = feats_a if feats_b is None else feats_b
    names_a = _names(names_a, len(feats_a), "a")
    names_b = _names(names_b, len(feats_b), "b")
    n = _batch_size(feats_a, names_a, "a")
    if _batch_size(feats_b, names_b, "b") != n:
        raise SuiteError("models a and b saw different numbers of samples")
    Ka = torch.stack([u_centre(rbf_gram(x, sigma_frac, m)).flatten() for x, m in zip(feats_a, names_a)])
    Kb = Ka if feats_b is feats_a else torch.stack(
        [u_centre(rbf_gram(x, sigma_frac, m)).flatten() for x, m in zip(feats_b, names_b)])
    return cka_from_hsic(Ka @ Kb.T, (Ka * Ka).sum(1), (Kb * Kb).sum(1)).cpu()
