"""Composite attacks: AutoAttack and the SNN surrogate ensemble, each a list of members (one single
method with one gradient) run in turn, each on the samples every earlier one left correct.

    autoattack  apgd-ce, apgd-t, fab-t, square with the run's gradient mode and surrogate (the
                standard AutoAttack of Croce and Hein 2020; suite.attacks.methods)
    ensemble    the per-sample worst case over SA-PGD, APGD-CE and APGD-T, each under several
                gradients (the modes of suite.attacks.gradients and attacker surrogate shapes and
                widths, in the spirit of the ensemble of Özdenizci and Legenstein, TMLR 2024),
                each run on the whole batch, then Square on what survives. The gradients and budgets are a preset
                (`EnsemblePreset` in suite.attacks.methods, `--budget quick|standard`). On an ANN
                every gradient is the exact one, so the members fold to APGD-CE, APGD-T, Square;
                under --grad transfer they fold the same way, each crafted on the source model
                (Square, gradient-free, queries the evaluated model, as in AutoAttack).

A sample keeps the first example that fools the evaluated model (`judge`) and `broken_by`
names the member that broke it ("clean" if the clean input is already wrong, "" if none did).
AutoAttack's members attack only what the earlier ones left correct (torchattacks' MultiAttack
rule). The ensemble's gradient members attack the whole batch, so each gives exactly what it
gives alone with the same seed (a member's batch decides its random start, and PDSG's width),
and the ensemble leaves no sample correct that any of them broke; only Square, the costliest,
runs on the survivors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol

import torch
from torch import Tensor, nn

from suite.attacks.methods import AUTOATTACK, BUDGETS, METHODS, Budget, batch_seed, craft


@dataclass(frozen=True)
class Member:
    """One member of a composite: a single method with a gradient mode and attacker surrogate
    (None: the training one; both None for a gradient-free method), and its label in
    `broken_by` and seeds."""

    label: str
    method: str
    grad: str | None = None
    surrogate: str | None = None
    whole_batch: bool = False  # attack every sample, not only those the earlier members left correct


def parse_member(spec: str) -> tuple[str, str, str | None]:
    """"sa-pgd/assg" -> ("sa-pgd", "assg", None); "apgd-ce/bptt:pcw:0.5" -> ("apgd-ce", "bptt", "pcw:0.5")."""
    method, _, gradient = spec.partition("/")
    mode, _, surrogate = gradient.partition(":")
    return method, mode, surrogate or None


def composite_members(method: str, grad: str, surrogate: str | None, budget_name: str,
                      snn: bool) -> tuple[Member, ...]:
    """The members of composite `method`, in order. autoattack: its four attacks with the run's
    gradient (`grad`, `surrogate`); ensemble: the preset `budget_name`'s members for an SNN
    target; for an ANN, whose gradient is exact, each of their methods once; and for a transfer
    attack (`grad` "transfer") each of their methods once, crafted on the source (its exact
    gradient, or bptt for an SNN source: the modes of the preset differentiate the target)."""
    if method == "autoattack":
        return tuple(Member(c, c, None if METHODS[c].gradient_free else grad,
                            None if METHODS[c].gradient_free else surrogate) for c in AUTOATTACK)
    members: list[Member] = []
    for spec in BUDGETS[budget_name].members:
        name, mode, shape = parse_member(spec)
        if snn and grad != "transfer":
            members.append(Member(spec, name, mode, shape, whole_batch=True))
        elif name not in [m.label for m in members]:
            members.append(Member(name, name, "transfer" if grad == "transfer" else "bptt", None, whole_batch=True))
    return (*members, Member("square", "square"))


def member_seed(seed: int, composite: str, member: Member, eps: float, start: int) -> int:
    """The RNG seed of one member's call on the batch starting at sample `start`: the run's seed
    keyed by "COMPOSITE/LABEL" (`composite` is the attack's name in the store), so a member's
    examples do not depend on which other members the composite holds."""
    return batch_seed(seed, f"{composite}/{member.label}", eps, start)


def member_budget(method: str, budget: Budget, budget_name: str) -> Budget:
    """What a member spends: the run's budget for autoattack, the preset's for the ensemble."""
    if method != "ensemble":
        return budget
    preset = BUDGETS[budget_name]
    return replace(budget, iterations=preset.iterations, queries=preset.queries, target_classes=preset.target_classes)


class Attackers(Protocol):
    """What a composite needs of suite.attacks.plan.Attackers: each member's model, and the
    evaluated model that judges (`judge`: [B, ...] -> logits [B, classes])."""

    judge: nn.Module

    def for_member(self, member: Member) -> nn.Module: ...


@torch.no_grad()
def _wrong(judge: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return judge(x).argmax(dim=1) != y


def craft_composite(attackers: Attackers, members: tuple[Member, ...], x: Tensor, y: Tensor, eps: float,
                    budget: Budget, seed: Callable[[Member], int], n_classes: int) -> tuple[Tensor, list[str]]:
    """A composite on one batch (module docstring): `attackers` gives each member its model and
    the judge, `seed(member)` its seed. Returns the examples [B, ...] and, per sample, the label
    of the member that broke it."""
    judge = attackers.judge
    adv = x.detach().clone()
    wrong = _wrong(judge, x, y)
    broken_by = ["clean" if w else "" for w in wrong.tolist()]
    if eps == 0:
        return adv, broken_by
    for member in members:
        left = (~wrong).nonzero().flatten()
        if left.numel() == 0:
            break
        on = torch.arange(len(y), device=y.device) if member.whole_batch else left
        a = craft(attackers.for_member(member), member.method, x[on], y[on], eps, budget, seed(member), n_classes)
        fooled = _wrong(judge, a, y[on]) & ~wrong[on]  # newly broken: earlier members keep theirs
        adv[on[fooled]] = a[fooled]
        wrong[on[fooled]] = True
        for i in on[fooled].tolist():
            broken_by[i] = member.label
    return adv, broken_by
