"""The settings of one attack run, `AttackConfig`, checked once when built.

The CLI and the recipes turn text into values first (`suite.values`: "8/255" -> 0.0313...,
"fgsm,pgd" -> ["fgsm", "pgd"]); `AttackConfig` holds values only, checks each once (a known
method, eps in [0, 1], a positive step, ...) and puts them in their one order (methods as
given, unique; eps sorted, unique).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from suite import defaults as D
from suite.attacks.gradients import GRAD_MODES, SURROGATE_MODES, ModeOptions
from suite.attacks.event_methods import EVENT_METHODS, RETIMING
from suite.attacks.methods import BUDGETS, METHODS
from suite.attacks.spike_grads import ASSG_A, HART_GAMMA, SHAPES, parse_shape
from suite.errors import SuiteError
from suite.models import SURROGATES
from suite.results.attacks import format_eps
from suite.values import MAX_TIMESTEPS, check_bool, check_choice, check_real, check_whole

MAX_STEPS = 100_000  # steps, iterations and queries beyond this are absurd here
MAX_QUERIES = 10_000_000
MAX_BATCH = 1 << 20
MAX_SEED = 2**63 - 1
SPLITS = ("train", "test")
THREATS = ("frames", "events")
MAX_EVENTS = 10_000_000  # events changed per sample: beyond any recording here
MAX_HART_GAMMA = 100.0  # a triangle wider than this weighs every membrane value alike: rate-only
MAX_ASSG_SHARPNESS = 0.49  # a = 2 tan(pi A) / pi grows without bound as A nears 1/2 (reference searches up to 0.49)

@dataclass(frozen=True)
class AttackConfig:
    """One attack run: methods x eps values on the first `samples` samples of `split`."""

    # empty: the default attack for the model's kind (defaults.ATTACK_DEFAULT; `for_model` fills it in)
    methods: tuple[str, ...] = ()
    # L-inf budgets of --threat frames (None: 8/255); --threat events has none: its budgets are `events`
    eps: tuple[float, ...] | None = None
    alpha: float = 2 / 255  # PGD step size
    steps: int = D.STEPS  # PGD steps
    random_start: bool = True  # PGD starts at a uniform random point in the eps ball
    # how an SNN is differentiated (suite.attacks.gradients); None: bptt, or for the default
    # attack its own (`for_model`)
    grad: str | None = None
    # the attacker's surrogates, each gradient attack run once per surrogate (empty: the training one)
    attack_surrogates: tuple[str, ...] = ()
    iterations: int = D.ITERATIONS  # APGD-CE/DLR/T and FAB-T iterations
    queries: int = D.QUERIES  # Square's queries
    samples: int | None = D.ATTACK_SAMPLES  # first N samples of the split; None: all
    batch_size: int = D.ATTACK_BATCH_SIZE
    seed: int = D.SEED
    split: str = D.SPLIT
    keep_clean: bool = True  # the store keeps a copy of the clean inputs (else their indices only)
    hart_gamma: float = HART_GAMMA  # grad hart: the triangle's width, its retention parameter
    assg_sharpness: float = ASSG_A  # grad assg: A, the surrogate's mass within +-E|v| is 2A
    budget: str = D.BUDGET  # the ensemble's preset: quick or standard (suite.attacks.ensemble)
    threat: str = D.THREAT  # frames (L-inf on the model's input) or events (suite.attacks.event_threat)
    events: tuple[int, ...] = ()  # --threat events: budgets in events per sample (empty: D.EVENT_BUDGETS)
    max_shift: int | None = None  # event-retime and its floor: the largest shift in time bins (None: any)

    def __post_init__(self) -> None:
        for name in ("methods", "eps", "attack_surrogates", "events"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"AttackConfig.{name} takes a sequence of values, not text; split it first")
        # one order and one spelling, so the config compares equal however it was built
        object.__setattr__(self, "methods", tuple(dict.fromkeys(str(m).lower() for m in self.methods)))
        object.__setattr__(self, "attack_surrogates", tuple(dict.fromkeys(self.attack_surrogates)))
        check_choice(self.threat, "--threat", THREATS)
        events = self.threat == "events"
        if events and self.eps:
            raise SuiteError("--eps is an L-inf budget of --threat frames; under --threat events the budgets "
                             "are --events (events added plus removed per sample)")
        if not events and self.events:
            raise SuiteError("--events gives budgets of --threat events; under --threat frames the budget is --eps")
        eps = () if events else (self.eps if self.eps is not None else (8 / 255,))
        for e in eps:
            check_real(e, "--eps", 0.0, 1.0)  # units of the [0, 1] input range
        object.__setattr__(self, "eps", tuple(sorted(set(float(e) for e in eps))))
        for k in self.events:
            check_whole(k, "--events", 0, MAX_EVENTS)
        object.__setattr__(self, "events", tuple(sorted(set(int(k) for k in (self.events or (D.EVENT_BUDGETS if events
                                                                                                 else ()))))))
        if self.max_shift is not None:
            check_whole(self.max_shift, "--max-shift", 1, MAX_TIMESTEPS)
        self._check()

    @property
    def budgets(self) -> tuple[float, ...]:
        """What each attack runs at: the eps values (frames) or the budgets in events (events)."""
        return tuple(float(k) for k in self.events) if self.threat == "events" else self.eps

    def _check(self) -> None:
        if not self.budgets:
            raise SuiteError("an attack needs at least one eps")
        for m in self.methods:
            check_choice(m, "attack method", METHODS)
        other = [m for m in self.methods if METHODS[m].threat != self.threat]
        if other and self.threat == "events":
            raise SuiteError(f"{other[0]} is an attack on frames (--threat frames); under --threat events "
                             f"choose from {', '.join(EVENT_METHODS)}")
        if other:
            raise SuiteError(f"{other[0]} is an attack of --threat events")
        if self.max_shift is not None and not set(self.methods) & set(RETIMING):
            raise SuiteError("--max-shift applies to event-retime and event-random-retime")
        check_real(self.alpha, "--alpha", 0.0, 1.0, lo_open=True)
        check_whole(self.steps, "--steps", 1, MAX_STEPS)
        check_whole(self.iterations, "--iterations", 1, MAX_STEPS)
        check_whole(self.queries, "--queries", 1, MAX_QUERIES)
        check_bool(self.random_start, "random start")
        check_bool(self.keep_clean, "keep_clean")
        if self.grad is not None:
            check_choice(self.grad, "gradient mode", GRAD_MODES)
        for s in self.attack_surrogates:
            if parse_shape(s) is None:
                check_choice(s, "surrogate", [*SURROGATES, *(f"{shape}:WIDTH" for shape in SHAPES)])
        if self.attack_surrogates and self.grad not in (*SURROGATE_MODES, None):
            rule = "the rate gradient" if self.grad == "bptr" else "its own rule"
            raise SuiteError(f"--attack-surrogate applies to bptt (and transfer from an SNN); "
                             f"{self.grad} uses {rule}, not a surrogate")
        check_real(self.hart_gamma, "--hart-gamma", 0.0, MAX_HART_GAMMA, lo_open=True)
        check_real(self.assg_sharpness, "--assg-sharpness", 0.0, MAX_ASSG_SHARPNESS, lo_open=True)
        check_choice(self.budget, "--budget", BUDGETS)
        if self.samples is not None:
            check_whole(self.samples, "--samples", 1, MAX_BATCH * 1024)
        check_whole(self.batch_size, "--batch-size", 1, MAX_BATCH)
        check_whole(self.seed, "--seed", 0, MAX_SEED)
        check_choice(self.split, "split", SPLITS)
        if "pgd" in self.methods and self.steps == 1:
            over = [e for e in self.eps if 0 < e < self.alpha]
            if over:
                raise SuiteError(
                    f"PGD with 1 step and alpha {format_eps(self.alpha)} > eps {format_eps(over[0])}: the "
                    f"step would be clipped back to eps; use alpha <= eps, more steps, or fgsm")

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

    def for_model(self, snn: bool) -> "AttackConfig":
        """This config for a crafting model of the given kind: no methods means the default attack
        (defaults.ATTACK_DEFAULT), with its own gradient mode unless --grad or attacker surrogates
        name one; an unset mode is bptt otherwise. A config with both set is returned as is."""
        if self.methods and self.grad is not None:
            return self
        method, grad = D.ATTACK_DEFAULT["snn" if snn else "ann"] if self.threat == "frames" else \
            (D.EVENT_ATTACK_DEFAULT, D.ATTACK_DEFAULT["snn" if snn else "ann"][1])
        own = not self.methods and not self.attack_surrogates
        return replace(self, methods=self.methods or (method,), grad=self.grad or (grad if own else D.GRAD))

    def mode_options(self) -> ModeOptions:
        """The parameters of the gradient modes that take one."""
        return ModeOptions(hart_gamma=self.hart_gamma, assg_sharpness=self.assg_sharpness)

    def surrogate_runs(self) -> tuple[str | None, ...]:
        """The attacker surrogates a gradient method runs with (None: the training surrogate)."""
        return self.attack_surrogates or (None,)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"], d["eps"], d["attack_surrogates"] = list(self.methods), list(self.eps), list(self.attack_surrogates)
        d["events"] = list(self.events)
        return d
