"""CKA comparisons over a data loader: model vs model, a model vs itself, time step vs time step.

Every comparison streams minibatches: each hooked layer's output becomes its U-centred Gram
inside its forward hook and is dropped there (`grams.LayerGrams`), so memory is O(layers x
n²), not O(layers x n x d); the batch's HSIC values are folded into a `MinibatchCKA`
accumulator. Models are moved to `device` and run in eval mode under torch.no_grad; their
train/eval mode is restored after.

Under torchrun each rank passes its own share of the batches (`distributed.shard_loader`)
and the accumulators are summed over the ranks (`MinibatchCKA.all_reduce`), so every rank
returns the result over all batches. In one process that step does nothing.

Small batches: the unbiased estimator needs n >= 4 samples per batch. A *final* batch with
fewer than 4 samples (the remainder of a dataset) is dropped; `n_samples` counts only the
samples used and `config["n_dropped"]` records the dropped ones. A smaller batch anywhere
else is an error, since dropping it would silently change the result.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from suite import distributed
from suite.cka.core import MIN_SAMPLES, MinibatchCKA, batch_hsic
from suite.cka.features import LayerSpec, layer_names, resolve_layers, timesteps
from suite.cka.grams import LayerGrams, sample_count
from suite.cka.similarity import MeasureBatches, check_measures
from suite.results.cka import CKAResult
from suite.errors import SuiteError

Progress = Callable[[int], Any] | None


@dataclass(frozen=True)
class Options:
    """How a comparison runs over its batches and what it adds to linear CKA: on `device`,
    calling `progress(1)` after each batch, with `n_boot` bootstrap resamples over the
    minibatches for 95% intervals (0: none), and the `measures` it computes
    (suite.cka.similarity; linear CKA always)."""

    device: str | torch.device = "cpu"
    progress: Progress = None
    n_boot: int = 0
    measures: tuple[str, ...] = ("linear-cka",)


def _inputs(batch) -> Any:
    """The model input of a loader batch: `x` of (x, y, ...) or the batch itself."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _pairs(loader: Iterable, loader_b: Iterable | None):
    """Yield (batch, batch_b); batch_b is None without loader_b. Unequal lengths are an error."""
    if loader_b is None:
        for batch in loader:
            yield batch, None
        return
    end = object()
    for batch, batch_b in itertools.zip_longest(loader, loader_b, fillvalue=end):
        if batch is end or batch_b is end:
            raise SuiteError("the paired loaders yield different numbers of batches")
        yield batch, batch_b


class _SmallBatchGuard:
    """Lets only the last batch be smaller than MIN_SAMPLES; counts what it drops."""

    def __init__(self):
        self.n_dropped = 0

    def keep(self, n: int) -> bool:
        if self.n_dropped:
            raise SuiteError(
                f"a batch of {self.n_dropped} samples came before the last batch; the unbiased "
                f"estimator needs n >= {MIN_SAMPLES}; choose --samples/--batch-size so every "
                f"batch has >= {MIN_SAMPLES}"
            )
        if n < MIN_SAMPLES:
            self.n_dropped = n
            return False
        return True

    def total(self) -> int:
        """Samples dropped over all ranks (only the last batch of all can be small)."""
        return int(distributed.all_reduce_sum(torch.tensor([float(self.n_dropped)], dtype=torch.float64)))


class _EvalMode:
    """Context: models in eval mode on `device`, train/eval flags restored on exit."""

    def __init__(self, *models: nn.Module, device: torch.device):
        self.models = list({id(m): m for m in models}.values())
        self.device = device

    def __enter__(self):
        self.flags = [m.training for m in self.models]
        for m in self.models:
            m.to(self.device).eval()

    def __exit__(self, *exc):
        for m, flag in zip(self.models, self.flags):
            m.train(flag)


def _to(x, device: torch.device):
    return x.to(device, non_blocking=True) if isinstance(x, Tensor) else x


def _rows(K: Tensor, rows: list[int]) -> Tensor:
    """Rows of a Gram stack; the stack itself (no copy) when that is all of them in order."""
    return K if rows == list(range(K.shape[0])) else K[rows]


def compare_models(
    model_a: nn.Module,
    model_b: nn.Module,
    loader: Iterable,
    layers_a: LayerSpec = None,
    layers_b: LayerSpec = None,
    time: str = "mean",
    loader_b: Iterable | None = None,
    stream: Options = Options(),
) -> CKAResult:
    """CKA between every layer of model_a and every layer of model_b: matrix [La, Lb].

    Both models see each batch of `loader`, or model_b the matching batch of `loader_b`
    (paired inputs: clean vs adversarial, static vs event). If model_a is model_b without
    loader_b, one forward pass per batch serves both sides: compare "layers", else "models".
    """
    device = torch.device(stream.device)
    check_measures(stream.measures)
    names_a, names_b = resolve_layers(model_a, layers_a), resolve_layers(model_b, layers_b)
    entries_a = layer_names(names_a, timesteps(model_a), time)
    entries_b = layer_names(names_b, timesteps(model_b), time)
    one_pass = model_a is model_b and loader_b is None
    same_names = one_pass and names_a == names_b  # a self-comparison: one Gram stack serves both sides
    acc = MinibatchCKA(len(entries_a), len(entries_b), keep_batches=True, names_a=entries_a, names_b=entries_b)
    others = MeasureBatches(stream.measures, len(entries_a), len(entries_b))
    keep = bool(others.measures)  # the Grams before U-centring, for the other measures
    union = names_a + [n for n in names_b if n not in names_a]  # the same model on both sides
    guard = _SmallBatchGuard()

    with _EvalMode(model_a, model_b, device=device), torch.no_grad(), \
            LayerGrams(model_a, union if model_a is model_b else names_a, time, keep) as grams_a, \
            (nullcontext(grams_a) if model_a is model_b else LayerGrams(model_b, names_b, time, keep)) as grams_b:
        rows_a, rows_b = grams_a.rows(names_a), grams_b.rows(names_b)
        for batch, batch_b in _pairs(loader, loader_b):
            x = _to(_inputs(batch), device)
            x_b = x if batch_b is None else _to(_inputs(batch_b), device)
            n, n_b = sample_count(x), sample_count(x_b)
            if n != n_b:
                raise SuiteError(f"model a saw {n} samples and model b {n_b} in the same batch")
            if guard.keep(n):
                K = grams_a.run(x)  # [entries, n²]
                Ca = grams_a.centred
                Ka = _rows(K, rows_a)
                Kb = None if same_names else _rows(K if one_pass else grams_b.run(x_b), rows_b)
                acc.add(*batch_hsic(Ka, Kb), n)
                if keep:
                    others.add(_rows(Ca, rows_a), None if same_names else _rows(grams_b.centred, rows_b),
                               max(grams_a.eps, grams_b.eps))
            if stream.progress is not None:
                stream.progress(1)
    acc.all_reduce()
    others.all_reduce()
    compare = "layers" if one_pass else "models"
    return CKAResult(
        matrix=acc.compute(), layers_a=entries_a, layers_b=entries_b, n_samples=acc.n_samples,
        n_batches=acc.n_batches, hsic_ab=acc.hsic_ab, hsic_aa=acc.hsic_aa, hsic_bb=acc.hsic_bb,
        **_interval(acc, stream.n_boot), compare=compare, time=time,
        measures=others.matrices(), batches={"linear-cka": _linear_batches(acc), **others.batches()},
        config={"compare": compare, "time": time, "n_dropped": guard.total(), "n_boot": stream.n_boot,
                "layers_a": names_a, "layers_b": names_b, "measures": list(stream.measures)},
    )


def _linear_batches(acc: MinibatchCKA) -> dict[str, Tensor]:
    """Linear CKA's per-batch HSIC values, [batches, ...] each (what a bootstrap resamples)."""
    return {key: torch.stack([b[j] for b in acc.batches]) for j, key in enumerate(("hsic_ab", "hsic_aa", "hsic_bb"))}


def _interval(acc: MinibatchCKA, n_boot: int) -> dict[str, Tensor | None]:
    """The bootstrap interval's bounds ci_lo, ci_hi (None without resamples)."""
    ci_lo, ci_hi = acc.bootstrap_ci(n_boot) if n_boot > 0 else (None, None)
    return {"ci_lo": ci_lo, "ci_hi": ci_hi}


def relabel(result: CKAResult, compare: str) -> CKAResult:
    """`result` labelled as comparison `compare` ("clean-adv", "static-event": paired inputs)."""
    result.compare = compare
    result.config["compare"] = compare
    return result


def compare_layers(model: nn.Module, loader: Iterable, layers: LayerSpec = None, time: str = "mean",
                   stream: Options = Options()) -> CKAResult:
    """CKA of a model's layers against each other: matrix [L, L], one forward pass per batch."""
    return compare_models(model, model, loader, layers, layers, time=time, stream=stream)


def compare_time(model: nn.Module, loader: Iterable, layers: LayerSpec = None,
                 stream: Options = Options()) -> CKAResult:
    """Temporal CKA of an SNN: for each layer, CKA between time steps t and t', matrix [L, T, T].

    layers_a = layers_b = the layer names; hsic_ab [L, T, T], hsic_aa = hsic_bb [L, T].
    """
    T = timesteps(model)
    if T is None:
        raise SuiteError(f"time comparison needs an SNN (kind 'snn' with timesteps); got {type(model).__name__}")
    check_measures(stream.measures)
    device, n_boot = torch.device(stream.device), stream.n_boot
    names = resolve_layers(model, layers)
    steps = [f"t{t}" for t in range(T)]
    accs = [MinibatchCKA(T, T, keep_batches=True, names_a=[f"{n}@{s}" for s in steps],
                         names_b=[f"{n}@{s}" for s in steps]) for n in names]
    others = [MeasureBatches(stream.measures, T, T) for _ in names]
    keep = bool(others[0].measures)
    guard = _SmallBatchGuard()

    with _EvalMode(model, device=device), torch.no_grad(), LayerGrams(model, names, "each", keep) as grams:
        for batch, _ in _pairs(loader, None):
            x = _to(_inputs(batch), device)
            n = sample_count(x)
            if guard.keep(n):
                K = grams.run(x)  # [L*T, n²]: layer l's time steps are rows l*T .. l*T+T-1
                for l, acc in enumerate(accs):
                    acc.add(*batch_hsic(K[l * T : (l + 1) * T]), n)  # self-comparison
                    if keep:
                        others[l].add(grams.centred[l * T : (l + 1) * T], eps=grams.eps)
            if stream.progress is not None:
                stream.progress(1)
    for acc, other in zip(accs, others):
        acc.all_reduce()
        other.all_reduce()

    ci = [acc.bootstrap_ci(n_boot) for acc in accs] if n_boot > 0 else None
    per_layer = [o.batches() for o in others]  # measure -> key -> [batches, T, T] (or [batches, T])
    return CKAResult(
        matrix=torch.stack([acc.compute() for acc in accs]),  # [L, T, T]
        layers_a=names, layers_b=names,
        n_samples=accs[0].n_samples, n_batches=accs[0].n_batches,
        hsic_ab=torch.stack([acc.hsic_ab for acc in accs]),  # [L, T, T]
        hsic_aa=torch.stack([acc.hsic_aa for acc in accs]),  # [L, T]
        hsic_bb=torch.stack([acc.hsic_bb for acc in accs]),  # [L, T]
        ci_lo=torch.stack([c[0] for c in ci]) if ci else None,
        ci_hi=torch.stack([c[1] for c in ci]) if ci else None,
        compare="time", time="each",
        measures={m: torch.stack([o.matrices()[m] for o in others]) for m in others[0].measures},  # [L, T, T]
        batches={"linear-cka": {key: torch.stack([_linear_batches(acc)[key] for acc in accs], dim=1)
                                for key in ("hsic_ab", "hsic_aa", "hsic_bb")},  # [batches, L, ...]
                 **{m: {key: torch.stack([b[m][key] for b in per_layer], dim=1) for key in per_layer[0][m]}
                    for m in others[0].measures}},
        config={"compare": "time", "time": "each", "timesteps": T, "n_dropped": guard.total(),
                "n_boot": n_boot, "layers": names, "measures": list(stream.measures)},
    )
