"""Grams formed inside forward hooks, so CKA memory does not grow with feature size.

`LayerGrams(model, names, time)` hooks the named modules; `run(x)` runs the model once and
returns the U-centred Gram of every CKA entry, flattened: [E, n²] float64, rows ordered as
`layer_names(names, T, time)`; with `keep_centred` it also keeps each entry's Gram before
U-centring, [E, n, n] in `centred`, for the measures beside linear CKA (suite.cka.similarity). Each hook reduces its module's output over time (SNN), forms
the Gram (`core.u_gram`: float32 Gram of mean-centred features, U-centred in float64) and
keeps nothing of the output. A forward pass then holds O(E·n²) for CKA instead of the
O(E·n·d) of keeping every layer's features until the pass ends. The numbers are those of
`features.extract_features` followed by `MinibatchCKA.update`: the same time reductions
(`features.reduce_time`) and the same Gram arithmetic.

n is the number of samples in the batch: dim 0 of the model input (inputs are batch-first,
as every suite model's are). An SNN module runs either once on the merged batch [T*n, ...]
or T times, once per time step, on [n, ...]. A per-step module's Gram is formed at each
step for time="each"; for "mean" it keeps a running sum of its outputs (one output's size)
and for "concat" its T outputs, until its last step.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from suite.cka.core import gram, gram_dtype, u_centre
from suite.cka.features import (_first_tensor, check_time_mode, layer_names, layer_time, merged, reduce_time,
                                resolve_layers, time_layout)
from suite.errors import SuiteError


def sample_count(x) -> int:
    """The batch's number of samples: dim 0 of the input (of its first tensor for a tuple/list)."""
    if isinstance(x, Tensor):
        return int(x.shape[0])
    if isinstance(x, (tuple, list)):
        for item in x:
            if isinstance(item, Tensor):
                return int(item.shape[0])
    raise SuiteError(f"model input of type {type(x).__name__} holds no tensor; CKA needs batch-first tensors")


class _Calls:
    """What one module has done in the current forward pass."""

    def __init__(self):
        self.count = 0
        self.per_step = False
        self.sum: Tensor | None = None  # time="mean", per-step module: running sum [n, D]
        self.parts: list[Tensor] = []  # time="concat", per-step module: its outputs so far


class LayerGrams:
    """Context manager: hooks that turn each named module's output into U-centred Grams.

    Hooks come off on exit, also after an error. `rows(names)` gives the entry rows of some
    of the layers (a comparison may read two subsets of one model's entries).
    """

    def __init__(self, model: nn.Module, names: Sequence[str], time: str = "mean", keep_centred: bool = False):
        check_time_mode(time)
        self.model, self.names, self.time = model, list(names), time
        self.keep_centred = keep_centred  # also keep each entry's Gram before U-centring (other measures)
        self.centred: Tensor | None = None  # [E, n, n] float64 of the last run, when kept
        self.eps = 0.0  # unit roundoff of the coarsest Gram of the last run (core.gram_dtype)
        self.T = layer_time(model, self.names, time)
        self._layouts = {name: time_layout(model, name) for name in self.names}
        self.entries = layer_names(self.names, self.T, time)
        self._per = self.T if (time == "each" and self.T is not None) else 1  # entries per layer
        self._row0 = {name: i * self._per for i, name in enumerate(self.names)}
        modules = dict(model.named_modules())
        missing = [n for n in self.names if n not in modules or not n]
        if missing:
            resolve_layers(model, missing)  # raises the "unknown layer" error
        self._modules = [modules[n] for n in self.names]
        self._handles: list = []
        self._calls: dict[str, _Calls] | None = None
        self._n = 0
        self._out: Tensor | None = None

    def __enter__(self) -> "LayerGrams":
        try:
            for name, module in zip(self.names, self._modules):
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._remove()

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def rows(self, names: Sequence[str]) -> list[int]:
        """Entry rows of the named layers, in the order given (T rows each for time="each")."""
        return [self._row0[name] + k for name in names for k in range(self._per)]

    @torch.no_grad()
    def run(self, x) -> Tensor:
        """model(x) once: every entry's flattened U-centred Gram, [E, n²] float64."""
        self._n = sample_count(x)
        self.eps = 0.0
        self._calls = {name: _Calls() for name in self.names}
        self._out = None
        try:
            self.model(x)
            self._check_complete()
            return self._out
        finally:
            self._calls, self._out = None, None

    def _hook(self, name: str):
        def hook(module, inputs, out):
            if self._calls is not None:  # only inside run()
                self._take(name, _first_tensor(out).detach())
        return hook

    def _take(self, name: str, y: Tensor) -> None:
        """One call of a module: form the Grams it completes, keep only what a later step needs."""
        layout = self._layouts[name]
        calls, n, row = self._calls[name], self._n, self._row0[name]
        T = None if layout == "once" else self.T
        y = merged(y, layout)
        calls.count += 1
        rows = y.shape[0]
        if T is None or rows == T * n:  # the ANN's output, or the SNN's merged batch [T*n, ...]
            if calls.count > 1:
                raise _ran_often(name, calls.count)
            if rows != (n if T is None else T * n):
                raise SuiteError(f"layer {name}: output of {rows} rows for a batch of {n} samples")
            for k, feat in enumerate(reduce_time(name, [y], T, self.time)):
                self._write(row + k, feat)
            return
        if rows != n:
            raise SuiteError(f"layer {name}: output of {rows} rows is neither the batch of {n} samples "
                             f"nor T*{n} with T={T}")
        t = calls.count - 1  # a per-step module: this is time step t
        calls.per_step = True
        if t >= T:
            raise _ran_often(name, calls.count)
        if self.time == "each":
            self._write(row + t, y.flatten(1))
        elif self.time == "mean":
            calls.sum = y.flatten(1).clone() if t == 0 else calls.sum.add_(y.flatten(1))
            if t == T - 1:
                self._write(row, calls.sum / T)  # equals torch's mean over T (same additions)
                calls.sum = None
        else:
            calls.parts.append(y)
            if t == T - 1:
                self._write(row, reduce_time(name, calls.parts, T, "concat")[0])
                calls.parts = []

    def _write(self, row: int, feat: Tensor) -> None:
        K = gram(feat, self.entries[row])  # [n, n] float64, Gram of the batch-centred features
        self.eps = max(self.eps, torch.finfo(gram_dtype(feat)).eps)
        if self._out is None:
            self._out = torch.empty(len(self.entries), K.numel(), dtype=torch.float64, device=K.device)
            if self.keep_centred:
                self.centred = torch.empty(len(self.entries), *K.shape, dtype=torch.float64, device=K.device)
        if self.keep_centred:
            self.centred[row] = K
        self._out[row] = u_centre(K).flatten()

    def _check_complete(self) -> None:
        for name, calls in self._calls.items():
            if calls.count == 0:
                raise SuiteError(f"layer {name} did not run in the forward pass")
            if calls.per_step and calls.count != self.T:
                raise _ran_often(name, calls.count)


def _ran_often(name: str, count: int) -> SuiteError:
    return SuiteError(
        f"layer {name} ran {count} times in one forward pass (a shared module?); "
        "its output is ambiguous, pick a module that runs once"
    )
