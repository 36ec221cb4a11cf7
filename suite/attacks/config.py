"""The settings of one attack run (`AttackConfig`) and the parsers of their CLI text.

The CLI parses `--method`, `--eps` and `--alpha` text with `parse_methods`, `parse_eps` and
`parse_alpha`; `AttackConfig` holds names, floats and tuples only and validates their values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from suite.attacks.gradients import check_grad_mode
from suite.attacks.methods import METHODS
from suite.config import parse_fraction, parse_fraction_list
from suite.errors import SuiteError
from suite.results.attacks import format_eps

def parse_methods(text: str) -> tuple[str, ...]:
    """--method "fgsm, PGD" -> ("fgsm", "pgd"): lower-case names, unique, in the given order."""
    names = tuple(dict.fromkeys(m.strip().lower() for m in str(text).split(",") if m.strip()))
    if not names:
        raise SuiteError("--method is empty; choose from: " + ", ".join(METHODS))
    return names


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
    attack_surrogate: str | None = None  # bptt: the attacker's surrogate (None: the training one)
    samples: int | None = None  # first N samples of the split; None: all
    batch_size: int = 64
    seed: int = 0
    split: str = "test"

    def __post_init__(self):
        for name in ("methods", "eps", "alpha"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"AttackConfig.{name} takes values, not text; parse it with parse_{name}")
        # sequences become tuples (the config is hashable and compares equal however it was built)
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods)))
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
        if self.steps < 1:
            raise SuiteError(f"steps must be >= 1, got {self.steps}")
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
        check_grad_mode(self.grad, self.attack_surrogate)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"], d["eps"] = list(self.methods), list(self.eps)
        return d
