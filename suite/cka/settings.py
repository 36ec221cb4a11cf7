"""The settings of one CKA run, `CKAConfig`, checked once when built, and what it compares
(`CKAInputs`: checkpoints, an attack store).

The CLI and the recipes turn text into values first (`suite.values`); `CKAConfig` holds values
only and checks each once (a known comparison and time reduction, a batch the unbiased
estimator can use, ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from suite import defaults as D
from suite.cka.core import MIN_SAMPLES
from suite.cka.features import TIME_MODES
from suite.cka.similarity import check_measures
from suite.errors import SuiteError
from suite.values import check_choice, check_whole

MAX_BATCH = 1 << 16  # a CKA minibatch forms n x n Grams: beyond this they do not fit anywhere
MAX_SAMPLES = 1 << 30
MAX_BOOTSTRAP = 100_000
MAX_SEED = 2**63 - 1
SPLITS = ("train", "test")
# `--compare` words -> the comparison's name
COMPARES = {"models": "models", "layers": "layers", "time": "time",
            "clean adv": "clean-adv", "clean-adv": "clean-adv", "static event": "static-event",
            "static-event": "static-event"}


def parse_compare(words: list[str]) -> str:
    """`--compare clean adv` arrives as words; the comparison's name ("clean-adv")."""
    key = " ".join(w.strip().lower() for w in words if w.strip()).replace("_", "-")
    if key not in COMPARES:
        raise SuiteError(f"unknown comparison {key!r}; choose models, layers, time, 'clean adv' or 'static event'")
    return COMPARES[key]


@dataclass(frozen=True)
class CKAConfig:
    """One CKA run: which comparison, over which layers and time reduction, on how many samples
    in minibatches of which size (`samples` None: the whole split; clean adv: the store's)."""

    compare: str = "models"
    layers: tuple[str, ...] | None = None  # module names, patterns or @sets; None: the model's default
    time: str = D.CKA_TIME
    samples: int | None = D.CKA_SAMPLES
    batch_size: int = D.CKA_BATCH_SIZE
    seed: int = D.SEED  # picks the subset of samples
    split: str = D.SPLIT
    bootstrap: int = 0  # resamples over minibatches for 95% intervals; 0: none
    measures: tuple[str, ...] = ("linear-cka",)  # and any of rbf-cka, procrustes, knn (suite.cka.similarity)

    def __post_init__(self) -> None:
        for name in ("layers", "measures"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"CKAConfig.{name} takes a sequence of names, not text; split it first")
        object.__setattr__(self, "measures", tuple(self.measures))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))
            if not self.layers or any(not isinstance(n, str) or not n.strip() for n in self.layers):
                raise SuiteError("--layers has an empty item")
        check_choice(self.compare, "comparison", sorted(set(COMPARES.values())))
        check_choice(self.time, "--time", TIME_MODES)
        if self.samples is not None:
            check_whole(self.samples, "--samples", MIN_SAMPLES, MAX_SAMPLES)
        check_whole(self.batch_size, "--batch-size", MIN_SAMPLES, MAX_BATCH)
        check_whole(self.seed, "--seed", 0, MAX_SEED)
        check_choice(self.split, "split", SPLITS)
        check_whole(self.bootstrap, "--bootstrap", 0, MAX_BOOTSTRAP)
        check_measures(self.measures)

    @property
    def layer_spec(self) -> str | None:
        """The layers as `resolve_layers` takes them (a comma list), or None for the default."""
        return None if self.layers is None else ",".join(self.layers)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = None if self.layers is None else list(self.layers)
        d["measures"] = list(self.measures)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CKAConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class CKAInputs:
    """What a CKA run reads: the (first) checkpoint `model`, a second one `model2` (models, static
    event), an attack store and which of its attacks (clean adv; `other_model` lets `model` differ
    from the attacked one) and a dataset other than the checkpoint's own."""

    model: Path | None = None
    model2: Path | None = None
    attack: Path | None = None
    method: str | None = None
    other_model: bool = False
    dataset: str | None = None

    def check(self, compare: str) -> None:
        """The inputs that belong to `compare`: clean adv needs an attack store and takes one
        model; the store's options belong to clean adv only; every other comparison needs
        --model, and models needs --model2."""
        if compare == "clean-adv":
            if self.attack is None:
                raise SuiteError("--compare clean adv needs --attack (an adversarial store written by `suite attack`)")
            if self.model2 is not None:
                raise SuiteError("--compare clean adv takes one model (--model); --model2 is for models and "
                                 "static event")
            return
        words = compare.replace("-", " ")
        for flag, given in (("--attack", self.attack is not None), ("--method", self.method is not None),
                            ("--other-model", self.other_model)):
            if given:
                raise SuiteError(f"{flag} belongs to --compare clean adv, not --compare {words}")
        if self.model is None:
            raise SuiteError(f"--compare {words} needs --model (a checkpoint)")
        if compare == "models" and self.model2 is None:
            raise SuiteError("--compare models needs --model2 (the second checkpoint)")
