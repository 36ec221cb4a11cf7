"""Which attacks a run makes: each method once per attacker surrogate (gradient-free methods
once), as a typed `Attack` (method, gradient mode, surrogate, and for a composite its members),
with the model each one differentiates or queries.

An attack's `name` labels its store entries: the method ("pgd") when one surrogate is used, else
method@surrogate ("pgd@fast_sigmoid"); gradient-free methods keep their bare name ("square").
What the store records of each (suite.results.attacks.AttackRecord) comes from its fields, never
from its name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from suite.attacks.composite import Member, composite_members
from suite.attacks.gradients import attack_model, describe_gradient, is_snn
from suite.attacks.methods import METHODS
from suite.attacks.settings import AttackConfig
from suite.errors import SuiteError
from suite.models import MeanLogits

GRADIENT_FREE = {"grad": "none (gradient-free)", "surrogate": "-"}


@dataclass(frozen=True)
class Attack:
    """One attack of a run: a method with a gradient mode and attacker surrogate (None: the
    training one; mode None for a gradient-free method) and, for a composite, its members."""

    name: str
    method: str
    grad: str | None = None
    surrogate: str | None = None
    members: tuple[Member, ...] = ()

    dropped: tuple[tuple[str, str], ...] = ()  # members the model cannot run: (label, why)

    @property
    def gradient_free(self) -> bool:
        return METHODS[self.method].gradient_free


def plan_attacks(config: AttackConfig, snn: bool = True) -> list[Attack]:
    """The attacks of `config`, in run order: methods in the given order, surrogates within each
    (the ensemble once: its members bring their own).
    `snn`: whether the crafting model is spiking (the ensemble's members depend on it)."""
    attacks = []
    for method in config.methods:
        if METHODS[method].gradient_free:
            attacks.append(Attack(method, method))
            continue
        # the ensemble runs once: its members bring their own surrogates
        surrogates = config.surrogate_runs() if METHODS[method].takes_surrogates else (None,)
        for s in surrogates:
            members = composite_members(method, config.grad, s, config.budget, snn) \
                if METHODS[method].components else ()
            attacks.append(Attack(method if len(surrogates) == 1 else f"{method}@{s}", method, config.grad, s,
                                  members))
    return attacks


class Attackers:
    """The models the attacks use, built once each: per gradient (mode and surrogate) the
    differentiated copy (suite.attacks.gradients.attack_model); for gradient-free methods and
    the judge of composite attacks, the evaluated model itself (no surrogate, no transfer)."""

    def __init__(self, model: nn.Module, config: AttackConfig, source: nn.Module | None, device):
        self.model, self.config, self.source, self.device = model, config, source, device
        self._built: dict[Any, nn.Module] = {}
        self.judge = MeanLogits(model)
        self.attacks = [self._build(a) for a in plan_attacks(config, self.snn)]

    def _build(self, attack: Attack) -> Attack:
        """Every model `attack` uses, built now (a bad mode or source fails before any work). An
        ensemble member whose gradient mode the model cannot run (a whole-sequence rule on a model
        that loops over T itself) is dropped, with the reason; any other refusal stands."""
        if not attack.members:
            self.get(attack.method, attack.grad, attack.surrogate)
            return attack
        kept, dropped = [], []
        for member in attack.members:
            try:
                self.get(member.method, member.grad, member.surrogate)
                kept.append(member)
            except SuiteError as exc:
                if not METHODS[attack.method].own_gradients:
                    raise
                dropped.append((member.label, str(exc)))
        return replace(attack, members=tuple(kept), dropped=tuple(dropped))

    @property
    def snn(self) -> bool:
        return is_snn(self.source if self.config.grad == "transfer" else self.model)

    def get(self, method: str, grad: str | None, surrogate: str | None) -> nn.Module:
        """What `method` with gradient (`grad`, `surrogate`) differentiates or queries."""
        key = "queried" if METHODS[method].gradient_free else (grad, surrogate)
        if key not in self._built:
            self._built[key] = (attack_model(self.model) if key == "queried" else
                                attack_model(self.model, grad, surrogate, self.source,
                                             self.config.mode_options())).to(self.device)
        return self._built[key]

    def for_attack(self, attack: Attack) -> nn.Module:
        return self.get(attack.method, attack.grad, attack.surrogate)

    def for_member(self, member: Member) -> nn.Module:
        return self.get(member.method, member.grad, member.surrogate)


def describe_attack(attack: Attack, model: nn.Module, config: AttackConfig,
                    source: nn.Module | None) -> dict[str, Any]:
    """What the store records of one attack (suite.results.attacks.AttackRecord): its name,
    method, gradient mode and the surrogate differentiated (None where none is), the gradient in
    words for summaries ("grad", "surrogate"), and a composite's member labels."""
    members = {"members": [m.label for m in attack.members]} if attack.members else {}
    if attack.gradient_free:
        return {"name": attack.name, "method": attack.method, "gradient_free": True, "mode": None,
                "attack_surrogate": None, **GRADIENT_FREE}
    if METHODS[attack.method].own_gradients:  # the ensemble: members of --budget, or transferred
        how = (describe_gradient(model, "transfer", None, source)["grad"] if config.grad == "transfer"
               else "each member its own gradient")  # transfer: every member crafted on the source
        cannot = f"; without {', '.join(label for label, _ in attack.dropped)}, which this model cannot run" \
            if attack.dropped else ""
        return {"name": attack.name, "method": attack.method, "gradient_free": False, "mode": "ensemble",
                "attack_surrogate": None, "grad": f"ensemble of {len(attack.members)} ({config.budget}{cannot}), {how}",
                "surrogate": "-", **members, **({"dropped": dict(attack.dropped)} if attack.dropped else {})}
    words = describe_gradient(model, config.grad, attack.surrogate, source)
    differentiated = words["surrogate"] if words["surrogate"] not in ("-", "rate (IF)") else None
    return {"name": attack.name, "method": attack.method, "gradient_free": False, "mode": config.grad,
            "attack_surrogate": differentiated, **words, **members}
