"""Which attacks a run makes: each method once per attacker surrogate (gradient-free methods once),
with the model each one differentiates or queries.

An attack's `name` labels its store entries: the method ("pgd") when one surrogate is used, else
method@surrogate ("pgd@fast_sigmoid"); gradient-free methods keep their bare name ("square").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from suite.attacks.config import AttackConfig
from suite.attacks.gradients import attack_model, describe_gradient
from suite.attacks.methods import METHODS
from suite.models import MeanLogits

GRADIENT_FREE = {"grad": "none (gradient-free)", "surrogate": "-"}


@dataclass(frozen=True)
class Attack:
    """One attack of a run: a method, run with one attacker surrogate (None: the training one)."""

    name: str
    method: str
    surrogate: str | None = None

    @property
    def gradient_free(self) -> bool:
        return METHODS[self.method].gradient_free


def plan_attacks(config: AttackConfig) -> list[Attack]:
    """The attacks of `config`, in run order: methods in the given order, surrogates within each."""
    surrogates = config.surrogate_runs()
    attacks = []
    for method in config.methods:
        if METHODS[method].gradient_free:
            attacks.append(Attack(method, method))
        else:
            attacks.extend(Attack(method if len(surrogates) == 1 else f"{method}@{s}", method, s)
                           for s in surrogates)
    return attacks


class Attackers:
    """The models the attacks use, built once each: per surrogate, the differentiated copy
    (suite.attacks.gradients.attack_model); for gradient-free methods and the judge of
    composite attacks, the evaluated model itself (no surrogate, no transfer)."""

    def __init__(self, model: nn.Module, config: AttackConfig, source: nn.Module | None, device):
        self.model, self.config, self.source, self.device = model, config, source, device
        self._built: dict[Any, nn.Module] = {}
        self.judge = MeanLogits(model)
        for attack in plan_attacks(config):  # build all now: a bad mode or source fails before any work
            for method in METHODS[attack.method].components or (attack.method,):
                self.for_method(method, attack.surrogate)

    def for_method(self, method: str, surrogate: str | None) -> nn.Module:
        """What `method` (a single method, or a component of a composite) differentiates or queries."""
        key = "queried" if METHODS[method].gradient_free else surrogate
        if key not in self._built:
            self._built[key] = (attack_model(self.model) if key == "queried" else
                                attack_model(self.model, self.config.grad, surrogate, self.source)).to(self.device)
        return self._built[key]


def describe_attack(attack: Attack, model: nn.Module, config: AttackConfig,
                    source: nn.Module | None) -> dict[str, Any]:
    """What the store records of one attack: its method, surrogate and gradient in words."""
    gradient = GRADIENT_FREE if attack.gradient_free else describe_gradient(model, config.grad, attack.surrogate, source)
    return {"name": attack.name, "method": attack.method, "surrogate": attack.surrogate,
            "gradient_free": attack.gradient_free, **gradient}
