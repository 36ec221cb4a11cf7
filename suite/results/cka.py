"""CKA results: the `CKAResult` dataclass and its HDF5 form (kind "cka"); written by suite.cka.

File layout (root of the HDF5 file, beside the provenance attributes of suite.results.h5):

    cka [La, Lb]       (time comparison: [L, T, T])   CKA values, float64
    hsic_ab [La, Lb]   (time: [L, T, T])              mean unbiased HSIC over minibatches
    hsic_aa [La]       (time: [L, T])                 self-HSIC of model a's entries
    hsic_bb [Lb]       (time: [L, T])
    layers_a, layers_b                                entry names (strings)
    n_samples, n_batches                              scalars
    ci_lo, ci_hi       optional, shaped like cka      bootstrap interval over minibatches
    measures/NAME      optional, [La, Lb]             the other measures (rbf-cka, procrustes, knn:
                                                      suite.cka.similarity)
    batches/NAME/KEY   optional, [batches, ...]       per-minibatch values a bootstrap resamples:
                                                      linear-cka and rbf-cka their HSIC (KEY hsic_ab,
                                                      hsic_aa, hsic_bb), the others `value`
    attributes: compare ("models", "layers", "time", "clean-adv", "static-event"), time

The raw HSIC means with n_batches make runs mergeable: sums = mean * n_batches. The optional
groups came later within schema version 1: files without them read with none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor

from suite.errors import SuiteError
from suite.results.h5 import open_h5, read_config, read_provenance, read_strings, write_h5, write_strings

KIND = "cka"


@dataclass
class CKAResult:
    """CKA between the entries of two models (or one model over time), with its HSIC accumulators."""

    matrix: Tensor  # [La, Lb] float64, or [L, T, T] for compare="time"
    layers_a: list[str]
    layers_b: list[str]
    n_samples: int
    hsic_ab: Tensor  # shaped like matrix
    hsic_aa: Tensor  # [La] (time: [L, T])
    hsic_bb: Tensor  # [Lb] (time: [L, T])
    n_batches: int = 0
    ci_lo: Tensor | None = None
    ci_hi: Tensor | None = None
    compare: str = "models"
    time: str = "mean"
    measures: dict[str, Tensor] = field(default_factory=dict)  # other measures' [La, Lb] (not linear CKA)
    batches: dict[str, dict[str, Tensor]] = field(default_factory=dict)  # measure -> per-batch values
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # filled by `load` (suite.results.h5)

    def diagonal(self) -> list[tuple[str, float]]:
        """(layer, CKA) for every layer present on both sides, in model a's order: the headline
        of twin comparisons (the same layer in both models or on both inputs). NaN where the CKA
        is undefined; empty for a time comparison (its matrices are time step vs time step)."""
        if self.matrix.dim() != 2:
            return []
        col = {name: j for j, name in enumerate(self.layers_b)}
        return [(name, float(self.matrix[i, col[name]])) for i, name in enumerate(self.layers_a) if name in col]

    def of(self, measure: str) -> Tensor:
        """The matrix of `measure` ("linear-cka" is `matrix`); SuiteError if the result lacks it."""
        if measure == "linear-cka":
            return self.matrix
        if measure not in self.measures:
            have = ", ".join(["linear-cka", *self.measures])
            raise SuiteError(f"the CKA result holds no {measure} (it has: {have}); run it with --measure {measure}")
        return self.measures[measure]

    def save(self, path: str | os.PathLike, config: dict[str, Any] | None = None,
             command: str | None = None, device: str | None = None) -> Path:
        """Write atomically through suite.results.h5.write_h5; `config` adds to `self.config`;
        `device` (what the CKA ran on) goes into the provenance."""
        full_config = {**self.config, **(config or {})}

        def fill(f: h5py.File) -> None:
            f.create_dataset("cka", data=_np(self.matrix))
            f.create_dataset("hsic_ab", data=_np(self.hsic_ab))
            f.create_dataset("hsic_aa", data=_np(self.hsic_aa))
            f.create_dataset("hsic_bb", data=_np(self.hsic_bb))
            write_strings(f, "layers_a", list(self.layers_a))
            write_strings(f, "layers_b", list(self.layers_b))
            f.create_dataset("n_samples", data=int(self.n_samples))
            f.create_dataset("n_batches", data=int(self.n_batches))
            if self.ci_lo is not None and self.ci_hi is not None:
                f.create_dataset("ci_lo", data=_np(self.ci_lo))
                f.create_dataset("ci_hi", data=_np(self.ci_hi))
            for name, matrix in self.measures.items():
                f.create_dataset(f"measures/{name}", data=_np(matrix))
            for name, parts in self.batches.items():
                for key, values in parts.items():
                    f.create_dataset(f"batches/{name}/{key}", data=_np(values))
            f.attrs["compare"] = self.compare
            f.attrs["time"] = self.time

        return write_h5(path, KIND, full_config, fill, command=command, device=device)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CKAResult":
        """Read a result written by `save`; a missing, corrupt or foreign file is a SuiteError."""
        f = open_h5(path, kind=KIND)
        try:
            with f:
                ci = ("ci_lo" in f and "ci_hi" in f)
                return cls(
                    matrix=torch.from_numpy(f["cka"][()]),
                    layers_a=read_strings(f, "layers_a"),
                    layers_b=read_strings(f, "layers_b"),
                    n_samples=int(f["n_samples"][()]),
                    hsic_ab=torch.from_numpy(f["hsic_ab"][()]),
                    hsic_aa=torch.from_numpy(f["hsic_aa"][()]),
                    hsic_bb=torch.from_numpy(f["hsic_bb"][()]),
                    n_batches=int(f["n_batches"][()]) if "n_batches" in f else 0,
                    ci_lo=torch.from_numpy(f["ci_lo"][()]) if ci else None,
                    ci_hi=torch.from_numpy(f["ci_hi"][()]) if ci else None,
                    compare=str(f.attrs.get("compare", "models")),
                    time=str(f.attrs.get("time", "mean")),
                    measures={name: torch.from_numpy(d[()]) for name, d in f["measures"].items()}
                    if "measures" in f else {},
                    batches={name: {key: torch.from_numpy(d[()]) for key, d in g.items()}
                             for name, g in f["batches"].items()} if "batches" in f else {},
                    config=read_config(f),
                    provenance=read_provenance(f),
                )
        except (KeyError, OSError, ValueError) as exc:
            raise SuiteError(f"{path} is not a complete CKA result ({exc})") from None


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()
