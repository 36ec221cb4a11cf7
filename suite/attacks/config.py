"""The settings of one attack run (`AttackConfig`) and the parsers of their CLI text.

The CLI parses `--method`, `--eps`, `--alpha` and `--attack-surrogate` text with `parse_methods`,
`parse_eps`, `parse_alpha` and `parse_surrogates`; `AttackConfig` holds names, numbers and tuples
only and validates their values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from suite.attacks.gradients import check_grad_mode
from suite.attacks.methods import METHODS, STANDARD_ITERATIONS, STANDARD_QUERIES
from suite.config import parse_fraction, parse_fraction_list
from suite.errors import SuiteError
from suite.results.attacks import format_eps

def parse_methods(text: str) -> tuple[str, ...]:
    """--method "fgsm, PGD" -> ("fgsm", "pgd"): lower-case names, unique, in the given order."""
    names = tuple(dict.fromkeys(m.strip().lower() for m in str(text).split(",") if m.strip()))
    if not names:
        raise SuiteError("--method is empty; choose from: " + ", ".join(METHODS))
    return names


def parse_surrogates(text: str | None) -> tuple[str, ...]:
    """--attack-surrogate "atan,fast_sigmoid" -> ("atan", "fast_sigmoid"); None or "" -> () (the
    training surrogate). Names are checked by AttackConfig."""
    return tuple(dict.fromkeys(s.strip() for s in str(text or "").split(",") if s.strip()))


def parse_eps(text: str) -> tuple[float, ...]:
    """--eps "0,2/255,8/255" -> sorted unique floats in [0, 1]."""
    return tuple(sorted(set(parse_fraction_list(text, "eps"))))


def parse_alpha(text: str) -> float:
    """--alpha "2/255" -> float in (0, 1]."""
    alpha = parse_fraction(text, "alpha")
    if alpha <= 0:
        raise SuiteError(f"alpha {text!r} must be positive")
    return alpha


@dataclass(frozen=True)
class AttackConfig:
    """One attack run: methods x eps values on the first `samples` samples of `split`.

    Values are validated on construction (SuiteError). `methods` and `eps` are tuples
    (any sequence is turned into one; eps sorted and unique); text goes through the
    parse_* functions first.
    """

    methods: tuple[str, ...] = ("pgd",)
    eps: tuple[float, ...] = (8 / 255,)
    alpha: float = 2 / 255  # PGD step size
    steps: int = 10  # PGD steps
    random_start: bool = True  # PGD starts at a uniform random point in the eps ball
    grad: str = "bptt"  # bptt | bptr | transfer (see suite.attacks.gradients)
    # bptt: the attacker's surrogates, each attack run once per surrogate (empty: the training one)
    attack_surrogates: tuple[str, ...] = ()
    iterations: int = STANDARD_ITERATIONS  # APGD-CE/DLR/T and FAB-T iterations
    queries: int = STANDARD_QUERIES  # Square's queries
    samples: int | None = None  # first N samples of the split; None: all
    batch_size: int = 64
    seed: int = 0
    split: str = "test"

    def __post_init__(self):
        for name, parser in (("methods", "methods"), ("eps", "eps"), ("alpha", "alpha"),
                             ("attack_surrogates", "surrogates")):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"AttackConfig.{name} takes values, not text; parse it with parse_{parser}")
        # sequences become tuples (the config is hashable and compares equal however it was built)
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods)))
        object.__setattr__(self, "attack_surrogates", tuple(dict.fromkeys(self.attack_surrogates)))
        object.__setattr__(self, "eps", tuple(sorted(set(float(e) for e in self.eps))))
        self._validate()

    def _validate(self) -> None:
        for m in self.methods:
            if m not in METHODS:
                raise SuiteError(f"unknown attack method {m!r}; choose one of: {', '.join(METHODS)}")
        if not self.methods or not self.eps:
            raise SuiteError("an attack needs at least one method and one eps")
        for e in self.eps:
            if not 0.0 <= e <= 1.0:
                raise SuiteError(f"eps {e:g} is outside [0, 1] (units of the [0, 1] input range)")
        for name in ("steps", "iterations", "queries"):
            if getattr(self, name) < 1:
                raise SuiteError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.alpha <= 1.0:
            raise SuiteError(f"alpha must be in (0, 1], got {self.alpha:g}")
        if "pgd" in self.methods and self.steps == 1:
            over = [e for e in self.eps if 0 < e < self.alpha]
            if over:
                raise SuiteError(
                    f"PGD with 1 step and alpha {format_eps(self.alpha)} > eps {format_eps(over[0])}: the "
                    f"step would be clipped back to eps; use alpha <= eps, more steps, or fgsm")
        if self.batch_size < 1:
            raise SuiteError(f"batch size must be >= 1, got {self.batch_size}")
        if self.samples is not None and self.samples < 1:
            raise SuiteError(f"samples must be >= 1, got {self.samples}")
        if self.split not in ("train", "test"):
            raise SuiteError(f"unknown split {self.split!r}; choose train or test")
        for surrogate in self.attack_surrogates or (None,):
            check_grad_mode(self.grad, surrogate)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AttackConfig":
        """The config stored with a run (`to_dict`); a store written before surrogate lists
        holds `attack_surrogate` (one name or None)."""
        d = dict(d)
        if "attack_surrogate" in d:
            one = d.pop("attack_surrogate")
            d.setdefault("attack_surrogates", (one,) if one else ())
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})

    def surrogate_runs(self) -> tuple[str | None, ...]:
        """The attacker surrogates a gradient method runs with (None: the training surrogate)."""
        return self.attack_surrogates or (None,)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"], d["eps"], d["attack_surrogates"] = list(self.methods), list(self.eps), list(self.attack_surrogates)
        return d
