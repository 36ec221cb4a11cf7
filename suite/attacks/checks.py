"""Sanity checks of an attack run: signs of a too-weak attack or of gradient masking.

Always run (free: they read the store):
    bounds       every |adv - clean| <= eps and every input in [0, 1] (also enforced on write)
    monotone     per method, robust accuracy does not rise with eps. Exact: one more correct
                 sample at a larger eps fails. PGD's random start can cause that on small
                 runs, so the message gives the sample counts for the reader to judge.
    pgd_vs_fgsm  where both methods ran at the same eps, PGD leaves no more samples correct
                 than FGSM (exact, likewise).
    large_eps    only where the store already holds PGD at eps >= 64/255 with >= 20 steps:
                 robust accuracy must be below 10%.
Run with --check (one extra PGD run on the store's samples, about `steps` forward and
backward passes per sample):
    large_eps    PGD at eps 64/255, max(20, steps) steps, alpha = MADRY_STEP_RATIO * eps / steps, same
                 gradient mode: robust accuracy below 10%, else gradient masking is suspected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from suite.attacks.config import AttackConfig
from suite.attacks.run import run_attacks
from suite.results.attacks import AttackStore, format_eps, verify_bounds
from suite.errors import SuiteError

LARGE_EPS = 64 / 255  # a quarter of the input range: far beyond any budget a model is meant to withstand
LARGE_STEPS = 20  # PGD steps at least, so that a failure is not a too-short walk
LARGE_MAX_ACC = 0.10  # robust accuracy expected below this at LARGE_EPS; above it, masking is suspected
# PGD step size alpha = 2.5 * eps / steps (Madry et al. 2018): the steps together walk 2.5 times
# the ball's radius, enough to cross it from any start point and still correct course
MADRY_STEP_RATIO = 2.5
EPS_MATCH = 1e-9  # two eps values closer than this are the same budget (floats from "8/255" text)


@dataclass(frozen=True)
class Check:
    """One sanity check: its name, whether it passed, and a sentence saying what was found."""

    name: str
    passed: bool
    message: str


def store_checks(store: AttackStore) -> list[Check]:
    """The checks that always run (see module docstring)."""
    checks = [_bounds(store)]
    n = store.n_samples
    correct = lambda e: round(e.robust_acc * n)  # noqa: E731
    for method in store.methods:
        entries = store.for_method(method)
        rises = [(a, b) for a, b in zip(entries, entries[1:]) if correct(b) > correct(a)]
        if len(entries) > 1:
            checks.append(Check(f"monotone[{method}]", not rises, (
                f"{method}: robust accuracy rises with eps: " + "; ".join(
                    f"{a.robust_acc:.1%} at {format_eps(a.eps)} -> {b.robust_acc:.1%} at {format_eps(b.eps)} "
                    f"(+{correct(b) - correct(a)} of {n} samples)" for a, b in rises)
                + ". A larger budget contains the smaller one, so this means the attack did not find "
                  "the optimum (one sample can be random-start noise on small runs)"
            ) if rises else f"{method}: robust accuracy does not rise with eps"))
    if {"pgd", "fgsm"} <= set(store.methods):
        pairs = [(store.entry("pgd", e.eps), e) for e in store.for_method("fgsm")
                 if e.eps > 0 and any(abs(p.eps - e.eps) < EPS_MATCH for p in store.for_method("pgd"))]
        weaker = [(p, f) for p, f in pairs if correct(p) > correct(f)]
        attack = store.config.get("attack", {})
        reach = attack.get("alpha", 0.0) * attack.get("steps", 0)
        short = [p for p, _ in weaker if reach < p.eps - EPS_MATCH]
        if pairs:
            checks.append(Check("pgd_vs_fgsm", not weaker, (
                "PGD is weaker than FGSM at " + "; ".join(
                    f"eps {format_eps(p.eps)} ({p.robust_acc:.1%} vs {f.robust_acc:.1%})" for p, f in weaker)
                + ": iterating did not help, a sign of a noisy or masked gradient (or too small alpha/steps)"
                + (f". Here steps x alpha = {format_eps(reach)} cannot reach eps "
                   f"{', '.join(format_eps(p.eps) for p in short)} from the start point: raise --steps or --alpha"
                   if short else "")
            ) if weaker else "PGD is at least as strong as FGSM at every shared eps"))
    steps = store.config.get("attack", {}).get("steps", 0)
    large = [e for e in store.for_method("pgd") if e.eps >= LARGE_EPS - EPS_MATCH] if steps >= LARGE_STEPS else []
    if large:
        checks.append(_large_eps(large[-1].robust_acc, large[-1].eps, steps, store))
    return checks


def large_eps_check(model: nn.Module, store: AttackStore, device: str | torch.device = "cpu",
                    source: nn.Module | None = None, clean: Tensor | None = None,
                    eps: float = LARGE_EPS, steps: int = LARGE_STEPS) -> Check:
    """The --check extra: PGD at a very large eps on the store's samples must leave < 10% correct."""
    clean = clean if clean is not None else store.clean
    if clean is None:
        raise SuiteError("the store keeps no clean inputs; pass clean=rebuild_clean(store, root)")
    base = AttackConfig(**{**store.config.get("attack", {}), "methods": ("pgd",), "eps": (eps,)})
    steps = max(steps, base.steps)
    cfg = replace(base, steps=steps, alpha=MADRY_STEP_RATIO * eps / steps, random_start=True, samples=None)
    result = run_attacks(model, TensorDataset(clean, store.labels), cfg, device=device,
                         source=source, keep_clean=False)
    return _large_eps(result.entries[0].robust_acc, eps, steps, store)


def _large_eps(acc: float, eps: float, steps: int, store: AttackStore) -> Check:
    grad = store.config.get("gradient", {}).get("grad", "?")
    passed = acc < LARGE_MAX_ACC
    if passed:
        msg = f"PGD-{steps} at eps {format_eps(eps)} leaves {acc:.1%} correct (< {LARGE_MAX_ACC:.0%})"
    elif grad.startswith("transfer"):
        msg = (f"PGD-{steps} at eps {format_eps(eps)} crafted by transfer leaves {acc:.1%} correct: the source's "
               f"examples do not carry over to the target; attack the target itself to test for masking")
    else:
        msg = (f"gradient masking suspected: PGD-{steps} at eps {format_eps(eps)} still leaves {acc:.1%} "
               f"correct (expected < {LARGE_MAX_ACC:.0%}); the gradients used ({grad}) do not point to the "
               f"model's weaknesses, so robust accuracy here overstates robustness. Try --grad bptr, another "
               f"--attack-surrogate, or a transfer attack from the ANN twin")
    return Check("large_eps", passed, msg)


def _bounds(store: AttackStore) -> Check:
    try:
        verify_bounds(store)
    except SuiteError as exc:
        return Check("bounds", False, str(exc))
    return Check("bounds", True, "every perturbation is within eps and every input in [0, 1]")


def all_passed(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)
