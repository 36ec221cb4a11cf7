"""The attack methods: what each name runs through torchattacks, its budget, and the seeded call
on one batch.

torchattacks as used here: untargeted L-inf, inputs and outputs in [0, 1] (the twins normalise
inside, so `set_normalization_used` is not needed), model in eval mode during the attack (its
default `set_model_training_mode(False)`), device taken from the attacker's parameters.

    fgsm        x + eps * sign(grad), clamped to [0, 1]
    pgd         optional uniform start in the eps ball, then `steps` times x + alpha * sign(grad),
                projected to the eps ball and [0, 1] (Madry et al. 2018)
    apgd-ce     APGD on the cross-entropy (Croce & Hein 2020): PGD with momentum and a step size
                that halves itself on stagnation; `iterations` steps, 1 restart
    apgd-dlr    APGD on the difference-of-logits-ratio loss (invariant to logit scale)
    apgd-t      targeted APGD-DLR against each of the 9 most likely wrong classes in turn
    fab-t       targeted FAB (minimal-perturbation attack) against the same 9 classes
    square      Square Attack (Andriushchenko et al. 2020): random square-shaped changes kept
                when the margin loss falls; `queries` forward passes, no gradient at all
    sa-pgd      stable adaptive PGD (Wang et al., arXiv 2512.22522): normalised momentum and
                second moment, clipped step, step size halved on a schedule (suite.attacks.sapgd);
                `iterations` steps
    autoattack  the standard AutoAttack (Croce & Hein 2020): apgd-ce, apgd-t, fab-t, square in
                turn, each on the samples every earlier one left correct
    ensemble    the SNN surrogate ensemble (suite.attacks.composite): SA-PGD, APGD-CE and APGD-T
                under several gradient modes and surrogate shapes and widths, each on the whole
                batch, then Square on the samples they all left correct; its budget is a preset
                (`--budget quick|standard`)

AutoAttack's standard budgets (github.com/fra31/auto-attack, `set_version('standard')`): 100
iterations for APGD-CE, APGD-T and FAB-T, 1 restart each, 9 target classes, Square with 5000
queries and p_init 0.8, its schedule not rescaled. `iterations` and `queries` default to them;
torchattacks' own `AutoAttack` uses 10 iterations instead (its APGD, APGDT and FAB defaults), so
the suite composes the four torchattacks attacks itself, with these budgets. The composition is
torchattacks' `MultiAttack` rule (tests compare the two), except that "still correct" is judged
by the evaluated model and Square queries the evaluated model (see `craft`).

Gradient-free methods (square) ignore the gradient mode: they query the evaluated model itself.

Determinism: every torchattacks call gets a seed from (seed, method, eps, first index of the
batch), set as torch's RNG seed inside `torch.random.fork_rng` and passed to the attacks that
reseed themselves (APGD, APGDT, FAB, Square), so the same seed and batch size give the same
examples whatever else ran before, and the caller's RNG state is left untouched.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torchattacks
from torch import Tensor, nn

from suite.attacks.gradients import reset_attack_state
from suite.attacks.sapgd import SAPGD
from suite.errors import SuiteError


STANDARD_ITERATIONS = 100  # AutoAttack standard: APGD-CE, APGD-T and FAB-T iterations
STANDARD_QUERIES = 5000  # AutoAttack standard: Square's query budget
TARGET_CLASSES = 9  # AutoAttack standard: APGD-T and FAB-T try the 9 most likely wrong classes
RESTARTS = 1  # AutoAttack standard: one run per attack (and per target class)
APGD_RHO = 0.75  # APGD's step-size halving threshold (the paper's and both libraries' value)
SQUARE_P_INIT = 0.8  # Square's initial fraction of pixels per square (AutoAttack's value)
AUTOATTACK = ("apgd-ce", "apgd-t", "fab-t", "square")  # the standard version, in its order



@dataclass(frozen=True)
class Budget:
    """What one call of a single method may spend: PGD's steps, step size and start; the
    iterations of APGD, FAB and SA-PGD; Square's queries; the target classes of the targeted
    methods."""

    steps: int
    alpha: float
    random_start: bool
    iterations: int
    queries: int
    target_classes: int = TARGET_CLASSES

    @classmethod
    def of(cls, config: Any) -> "Budget":
        """The budget of an AttackConfig (suite.attacks.settings, which imports this module)."""
        return cls(config.steps, config.alpha, config.random_start, config.iterations, config.queries)


Factory = Callable[[nn.Module, float, Budget, int, int], Any]  # (model, eps, budget, classes, seed) -> attack


def _targets(n_classes: int, wanted: int = TARGET_CLASSES) -> int:
    return min(wanted, n_classes - 1)


def _apgd(loss: str) -> Factory:
    return lambda model, eps, b, n_classes, seed: torchattacks.APGD(
        model, norm="Linf", eps=eps, steps=b.iterations, n_restarts=RESTARTS, seed=seed, loss=loss,
        eot_iter=1, rho=APGD_RHO)


def _apgd_t(model, eps, b, n_classes, seed):
    attack = torchattacks.APGDT(model, norm="Linf", eps=eps, steps=b.iterations, n_restarts=RESTARTS,
                                seed=seed, eot_iter=1, rho=APGD_RHO, n_classes=n_classes)
    attack.n_target_classes = _targets(n_classes, b.target_classes)  # torchattacks would try every wrong class
    return attack


def _fab_t(model, eps, b, n_classes, seed):
    attack = torchattacks.FAB(model, norm="Linf", eps=eps, steps=b.iterations, n_restarts=RESTARTS,
                              seed=seed, multi_targeted=True, n_classes=n_classes)
    attack.n_target_classes = _targets(n_classes, b.target_classes)
    return attack


def _square(model, eps, b, n_classes, seed):
    return torchattacks.Square(model, norm="Linf", eps=eps, n_queries=b.queries, n_restarts=RESTARTS,
                               p_init=SQUARE_P_INIT, loss="margin", resc_schedule=False, seed=seed)


@dataclass(frozen=True)
class EnsemblePreset:
    """A budget of the ensemble (`--budget`): the iterations of its gradient members (APGD-CE,
    APGD-T, SA-PGD), the target classes of APGD-T, Square's queries, and the members in order,
    each METHOD/GRADIENT with GRADIENT a mode or bptt:SURROGATE (suite.attacks.composite)."""

    iterations: int
    target_classes: int
    queries: int
    members: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "target_classes": self.target_classes, "queries": self.queries,
                "members": [*self.members, "square"], "restarts": RESTARTS}


# The members, chosen greedily from measurements (benchmarks/ensemble_members.py, README there):
# every candidate run as the ensemble runs it on 194 held-out test samples of the demo's SNN at
# eps 4/255 and 8/255, then added one at a time, each the one breaking the most samples no earlier
# member broke. Quick holds the first four (they leave 50.5% / 28.4% against 59.3% / 33.5% for
# SA-PGD through ASSG alone); standard holds every member that broke a new sample (46.9% / 26.8%),
# at AutoAttack's standard budget (9 target classes, 5000 Square queries). Square runs last, on
# the survivors, in both.
_QUICK = ("sa-pgd/assg", "apgd-ce/assg", "apgd-ce/hart", "apgd-t/bptt")
BUDGETS: dict[str, EnsemblePreset] = {
    "quick": EnsemblePreset(iterations=STANDARD_ITERATIONS, target_classes=3, queries=1000, members=_QUICK),
    "standard": EnsemblePreset(iterations=STANDARD_ITERATIONS, target_classes=TARGET_CLASSES,
                               queries=STANDARD_QUERIES,
                               members=(*_QUICK, "apgd-ce/rga", "apgd-t/assg", "apgd-ce/bptt", "apgd-ce/bptt:pcw:2",
                                        "apgd-ce/bptt:pcw:0.5", "apgd-ce/bptt:exp:1")),
}


@dataclass(frozen=True)
class Method:
    """One attack method: the torchattacks attack it builds (None: a composite of `components`),
    whether it uses gradients, and whether its members bring their own (`own_gradients`: the run's
    gradient mode and attacker surrogates do not apply, except transfer), the fewest classes it
    needs, and its budget in words and numbers."""

    make: Factory | None
    budget: Callable[[Any, int], dict[str, Any]]  # (AttackConfig, classes) -> the budget in numbers
    gradient_free: bool = False
    min_classes: int = 2
    components: tuple[str, ...] = ()
    own_gradients: bool = False
    threat: str = "frames"  # what it perturbs: the model's input, or event streams (suite.attacks.event_methods)

    @property
    def takes_surrogates(self) -> bool:
        """Whether --attack-surrogate applies: a gradient method that differentiates the run's gradient."""
        return not self.gradient_free and not self.own_gradients


def _iterations(loss: str | None = None, targeted: bool = False):
    def budget(cfg, n_classes):
        b = {"iterations": cfg.iterations, "restarts": RESTARTS}
        if loss:
            b["loss"] = loss
        if targeted:
            b["target_classes"] = _targets(n_classes)
        return b
    return budget


METHODS: dict[str, Method] = {
    "fgsm": Method(lambda model, eps, b, n, seed: torchattacks.FGSM(model, eps=eps), lambda cfg, n: {"steps": 1}),
    "pgd": Method(lambda model, eps, b, n, seed: torchattacks.PGD(model, eps=eps, alpha=b.alpha, steps=b.steps,
                                                                  random_start=b.random_start),
                  lambda cfg, n: {"steps": cfg.steps, "alpha": cfg.alpha, "random_start": cfg.random_start}),
    "apgd-ce": Method(_apgd("ce"), _iterations("ce")),
    # DLR divides by the gap between the 1st and 3rd largest logits: 3 classes at least
    "apgd-dlr": Method(_apgd("dlr"), _iterations("dlr"), min_classes=3),
    # the targeted DLR loss reads the 4th largest logit
    "apgd-t": Method(_apgd_t, _iterations("dlr-targeted", targeted=True), min_classes=4),
    "fab-t": Method(_fab_t, _iterations(targeted=True)),
    "square": Method(_square, lambda cfg, n: {"queries": cfg.queries, "restarts": RESTARTS, "p_init": SQUARE_P_INIT},
                     gradient_free=True),
    "sa-pgd": Method(lambda model, eps, b, n, seed: SAPGD(model, eps, b.iterations), _iterations("ce")),
    "autoattack": Method(None, lambda cfg, n: {
        "components": list(AUTOATTACK), "iterations": cfg.iterations, "queries": cfg.queries,
        "restarts": RESTARTS, "target_classes": _targets(n),
        "standard": cfg.iterations >= STANDARD_ITERATIONS and cfg.queries >= STANDARD_QUERIES},
        min_classes=4, components=AUTOATTACK),
    "ensemble": Method(None, lambda cfg, n: {
        "budget": cfg.budget, **BUDGETS[cfg.budget].as_dict(),
        "target_classes": _targets(n, BUDGETS[cfg.budget].target_classes)},
        min_classes=4, components=("sa-pgd", "apgd-ce", "apgd-t", "square"), own_gradients=True),
}


def _events_budget(*keys: str):
    def budget(cfg, n_classes):
        values = {"steps": cfg.steps, "max_shift": cfg.max_shift}
        return {"events": list(cfg.events), "unit": "events moved" if "max_shift" in keys else "events added or removed",
                **{k: values[k] for k in keys}}
    return budget


# The event threat model's attacks (suite.attacks.event_methods runs them, not torchattacks)
METHODS.update({
    "event-pgd": Method(None, _events_budget("steps"), threat="events"),
    "event-sparse": Method(None, _events_budget(), threat="events"),
    "event-retime": Method(None, _events_budget("max_shift"), threat="events"),
    "event-random": Method(None, _events_budget(), gradient_free=True, threat="events"),
    "event-random-retime": Method(None, _events_budget("max_shift"), gradient_free=True, threat="events"),
})


def budgets(config: Any, n_classes: int) -> dict[str, dict[str, Any]]:
    """The budget of every method of `config`, as used (stored with the results and printed)."""
    return {m: METHODS[m].budget(config, n_classes) for m in config.methods}


def check_classes(methods: tuple[str, ...], n_classes: int) -> None:
    """Refuse methods whose loss needs more classes than the model has."""
    for m in methods:
        if n_classes < METHODS[m].min_classes:
            raise SuiteError(f"{m} needs at least {METHODS[m].min_classes} classes; the model has {n_classes}")


def batch_seed(seed: int, method: str, eps: float, start: int) -> int:
    """The RNG seed of one torchattacks call: a stable hash (CRC-32, the same in every process,
    unlike Python's salted `hash`) of what identifies the call."""
    return zlib.crc32(f"{seed}:{method}:{eps!r}:{start}".encode())


def _seeded(attack: "torchattacks.attack.Attack", x: Tensor, y: Tensor, seed: int) -> Tensor:
    devices = [x.device.index if x.device.index is not None else torch.cuda.current_device()] \
        if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return attack(x, y).detach()


class _Images(nn.Module):
    """Presents a model on inputs [B, *shape] (event frames [B, T, C, H, W]) as one on images
    [B, prod(shape[:-2]), H, W]: APGD, FAB and Square assume 4-d inputs. L-inf balls, clamping
    and random draws are elementwise, so the attack is the same one."""

    def __init__(self, model: nn.Module, shape: torch.Size):
        super().__init__()
        self.model, self.shape = model, shape

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.reshape(x.shape[0], *self.shape))


def craft(attacker: nn.Module, method: str, x: Tensor, y: Tensor, eps: float, budget: Budget,
          seed: int, n_classes: int = 10) -> Tensor:
    """Adversarial inputs for one batch from a single (non-composite) method (eps 0: a copy of x,
    no attack call). `attacker` is what the method differentiates or queries; a stateful
    gradient mode (assg) starts afresh."""
    if eps == 0:
        return x.detach().clone()
    if x.dim() != 4:
        flat = x.reshape(x.shape[0], -1, *x.shape[-2:])
        return craft(_Images(attacker, x.shape[1:]), method, flat, y, eps, budget, seed, n_classes).reshape(x.shape)
    reset_attack_state(attacker)
    attacker.eval()  # every method attacks the model in eval mode (BatchNorm on its running statistics)
    return _seeded(METHODS[method].make(attacker, eps, budget, n_classes, seed), x, y, seed)
