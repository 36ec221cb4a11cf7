"""Sanity checks of an attack run and the gradient-masking verdict, each naming its evidence.

Always run (free: they read the store):
    bounds       every |adv - clean| <= eps and every input in [0, 1] (also enforced on write)
    monotone     per attack, robust accuracy does not rise with eps. Exact: one more correct
                 sample at a larger eps fails. Random starts can cause that on small runs, so
                 the message gives the sample counts for the reader to judge.
    pgd_vs_fgsm  where both methods ran at the same eps, PGD leaves no more samples correct
                 than FGSM (exact, likewise).
Masking checks (run where the store holds what they compare):
    square_vs_whitebox  Square (gradient-free) against the strongest white-box attack that ran at
                 the same eps (the fewest samples left correct): if Square leaves fewer correct,
                 by more than SQUARE_MARGIN, the gradients mislead the white-box attacks.
    autoattack_square   inside AutoAttack, the share of samples only Square broke (AutoAttack's
                 own check_square_sr, same threshold); ensemble_square the same inside the
                 ensemble, after all its white-box members.
    surrogates[m]  with several --attack-surrogate: the worst case of method m over the
                 surrogates must not be far (SURROGATE_MARGIN and SURROGATE_MIN_SAMPLES) below
                 the training surrogate's own result: else its gradient hides weaknesses.
    large_eps    where the store holds an iterative attack (>= 20 steps or iterations, or
                 >= 1000 Square queries) at eps >= 64/255: robust accuracy below 10%.
Run with --check (one extra PGD run on the store's samples, about `steps` forward and
backward passes per sample):
    large_eps    PGD at eps 64/255, max(20, steps) steps, alpha = MADRY_STEP_RATIO * eps / steps,
                 same gradient mode and surrogates: robust accuracy below 10%.
The masking verdict (`masking_verdict`) sums the masking checks up in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from suite.attacks.settings import AttackConfig
from suite.attacks.methods import AUTOATTACK, METHODS
from suite.attacks.run import run_attacks
from suite.attacks.event_checks import RANDOM_FLOORS, event_checks
from suite.attacks.worst import WORST
from suite.errors import SuiteError
from suite.results.attacks import SAME, AttackEntry, AttackStore, format_eps, verify_bounds

LARGE_EPS = 64 / 255  # a quarter of the input range: far beyond any budget a model is meant to withstand
LARGE_STEPS = 20  # steps or iterations at least, so that a failure is not a too-short walk
LARGE_QUERIES = 1000  # Square queries at least, likewise
LARGE_MAX_ACC = 0.10  # robust accuracy expected below this at LARGE_EPS; above it, masking is suspected
# PGD step size alpha = 2.5 * eps / steps (Madry et al. 2018): the steps together walk 2.5 times
# the ball's radius, enough to cross it from any start point and still correct course
MADRY_STEP_RATIO = 2.5
# Square beating the white-box attacks by more than this share of samples flags masking: AutoAttack's
# own threshold (check_square_sr, alpha 0.002); on a few hundred samples it means one sample
SQUARE_MARGIN = 0.002
# "far below": the worst case over surrogates more than 5 percentage points below the training
# surrogate's result (13 of 256 samples) and by at least 3 samples, beyond the one or two samples
# that random starts move on small runs
SURROGATE_MARGIN = 0.05
SURROGATE_MIN_SAMPLES = 3
MASKING_CHECKS = ("square_vs_whitebox", "autoattack_square", "ensemble_square", "surrogates", "large_eps",
                  "beats_random", "greedy_vs_pgd")


@dataclass(frozen=True)
class Check:
    """One sanity check: its name, whether it passed (None: it could not be run), a sentence
    saying what was found, and for a check run per attack (`monotone[pgd]`) the attack it
    looked at; `kind` is the check without it (`monotone`)."""

    kind: str
    passed: bool | None
    message: str
    of: str | None = None

    @property
    def name(self) -> str:
        return self.kind if self.of is None else f"{self.kind}[{self.of}]"


def store_checks(store: AttackStore) -> list[Check]:
    """The checks that read the store (see module docstring)."""
    checks = [_bounds(store)]
    n = store.n_samples
    correct = lambda e: round(e.robust_acc * n)  # noqa: E731
    threat = store.threat
    what = "the budget" if threat == "events" else "eps"
    for method in store.methods:
        entries = store.for_method(method)
        rises = [(a, b) for a, b in zip(entries, entries[1:]) if correct(b) > correct(a)]
        if len(entries) > 1 and method not in RANDOM_FLOORS:
            checks.append(Check("monotone", not rises, (
                f"{method}: robust accuracy rises with {what}: " + "; ".join(
                    f"{a.robust_acc:.1%} at {format_eps(a.eps, threat)} -> {b.robust_acc:.1%} at "
                    f"{format_eps(b.eps, threat)} (+{correct(b) - correct(a)} of {n} samples)" for a, b in rises)
                + ". A larger budget contains the smaller one, so this means the attack did not find "
                  "the optimum (one sample can be random-start noise on small runs)"
            ) if rises else f"{method}: robust accuracy does not rise with {what}", of=method))
    if threat == "events":
        return checks + [Check(*c) for c in event_checks(store)]
    if {"pgd", "fgsm"} <= set(store.methods):
        checks.extend(_pgd_vs_fgsm(store, correct))
    checks.extend(_large_eps_stored(store))
    checks.extend(_square_vs_whitebox(store))
    checks.extend(_composite_square(store))
    checks.extend(_surrogates(store))
    return checks


def _pgd_vs_fgsm(store: AttackStore, correct) -> list[Check]:
    pairs = [(store.entry("pgd", e.eps), e) for e in store.for_method("fgsm")
             if e.eps > 0 and any(abs(p.eps - e.eps) < SAME for p in store.for_method("pgd"))]
    if not pairs:
        return []
    weaker = [(p, f) for p, f in pairs if correct(p) > correct(f)]
    attack = store.config.get("attack", {})
    reach = attack.get("alpha", 0.0) * attack.get("steps", 0)
    short = [p for p, _ in weaker if reach < p.eps - SAME]
    return [Check("pgd_vs_fgsm", not weaker, (
        "PGD is weaker than FGSM at " + "; ".join(
            f"eps {format_eps(p.eps)} ({p.robust_acc:.1%} vs {f.robust_acc:.1%})" for p, f in weaker)
        + ": iterating did not help, a sign of a noisy or masked gradient (or too small alpha/steps)"
        + (f". Here steps x alpha = {format_eps(reach)} cannot reach eps "
           f"{', '.join(format_eps(p.eps) for p in short)} from the start point: raise --steps or --alpha"
           if short else "")
    ) if weaker else "PGD is at least as strong as FGSM at every shared eps")]


# ----------------------------------------------------------------------------- what the store holds

def _budget(store: AttackStore, method: str) -> dict:
    budget = store.config.get("budgets", {}).get(method)
    if budget is None and method == "pgd":  # stores written before budgets were recorded
        budget = {"steps": store.config.get("attack", {}).get("steps", 0)}
    return budget or {}


def _label(store: AttackStore, name: str) -> str:
    """An attack in words with its budget: PGD-20, APGD-CE (100 iterations), Square (5000 queries)."""
    if name == WORST:
        return "the worst case over all attacks"
    record = store.attack(name)
    method, several = record.method, name != record.method  # a run over several surrogates names them
    budget = _budget(store, method)
    words = (f"PGD-{budget.get('steps', '?')}" if method == "pgd" else
             f"Square ({budget.get('queries', '?')} queries)" if method == "square" else
             f"{method.upper()} ({budget['iterations']} iterations)" if "iterations" in budget else method.upper())
    return words + (f" with surrogate {record.surrogate}" if several and record.surrogate else "")


def _strong(store: AttackStore, name: str) -> bool:
    """Whether attack `name` spends enough budget for the large-eps check to mean something."""
    if name == WORST:
        return any(_strong(store, a) for a in store.methods if a != WORST)
    method = store.attack(name).method
    budget = _budget(store, method)
    return (budget.get("steps", 0) >= LARGE_STEPS and method != "fgsm"
            or budget.get("iterations", 0) >= LARGE_STEPS or budget.get("queries", 0) >= LARGE_QUERIES)


def _at(store: AttackStore, eps: float) -> list[AttackEntry]:
    return [e for e in store.entries if abs(e.eps - eps) < SAME]


def _correct(store: AttackStore, entries: list[AttackEntry]) -> Tensor:
    """Samples every one of `entries` left correctly classified, [N] bool."""
    return torch.stack([e.pred == store.labels for e in entries]).all(dim=0)


def _eps_values(store: AttackStore) -> list[float]:
    return sorted({e.eps for e in store.entries if e.eps > 0})


# ----------------------------------------------------------------------------- masking checks

def _large_eps_stored(store: AttackStore) -> list[Check]:
    large = [eps for eps in _eps_values(store) if eps >= LARGE_EPS - SAME
             and any(_strong(store, e.method) for e in _at(store, eps))]
    if not large:
        return []
    strong = [e for e in _at(store, large[-1]) if _strong(store, e.method)]
    best = min(strong, key=lambda e: e.robust_acc)
    return [_large_eps(best.robust_acc, best.eps, _label(store, best.method), store)]


def _transfer(store: AttackStore) -> bool:
    """Crafted on another model: gradient attacks are weaker than queries of the target by design."""
    return store.config.get("attack", {}).get("grad") == "transfer"


def _square_vs_whitebox(store: AttackStore) -> list[Check]:
    if "square" not in store.methods or _transfer(store):
        return []
    n, findings, compared = store.n_samples, [], []
    for eps in _eps_values(store):
        here = _at(store, eps)
        square = [e for e in here if e.method == "square"]
        white = [e for e in here if e.method != WORST and not store.attack(e.method).gradient_free
                 and not METHODS.get(store.attack(e.method).method, METHODS["pgd"]).components]
        if not square or not white:
            continue
        strongest = min(white, key=lambda e: int(_correct(store, [e]).sum()))  # first of the strongest, in run order
        sq, wb = _correct(store, square), _correct(store, [strongest])
        name = _label(store, strongest.method)
        gap = (int(wb.sum()) - int(sq.sum())) / n
        compared.append(f"Square {float(sq.double().mean()):.1%} vs {name} {float(wb.double().mean()):.1%} "
                        f"correct at {format_eps(eps)}")
        if gap > SQUARE_MARGIN:
            findings.append(
                f"Square leaves {gap:.1%} fewer correct than the strongest white-box attack, {name}, at eps "
                f"{format_eps(eps)} ({float(sq.double().mean()):.1%} vs {float(wb.double().mean()):.1%} of {n} "
                f"samples; Square broke {int((wb & ~sq).sum())} samples it left correct)")
    if not compared:
        return []
    if findings:
        return [Check("square_vs_whitebox", False, "gradient masking suspected: " + "; ".join(findings)
                      + ". A gradient-free attack should not beat gradient attacks: their gradients mislead them")]
    return [Check("square_vs_whitebox", True, "Square (gradient-free) does not beat the strongest white-box "
                  "attack: " + "; ".join(compared))]


def _composite_square(store: AttackStore) -> list[Check]:
    """autoattack_square and ensemble_square: inside a composite, the samples only Square broke."""
    if _transfer(store):
        return []
    n, checks = store.n_samples, []
    for name in store.methods:
        record = store.attack(name)
        if record.method not in ("autoattack", "ensemble"):
            continue
        found = []
        for e in store.for_method(name):
            if e.eps == 0 or e.broken_by is None:
                continue
            k = sum(b == "square" for b in e.broken_by)
            found.append((e, k))
        if not found:
            continue
        over = [(e, k) for e, k in found if k / n > SQUARE_MARGIN]
        others = (", ".join(c.upper() for c in AUTOATTACK if c != "square") if record.method == "autoattack"
                  else "its white-box members")
        checks.append(Check(f"{record.method}_square", not over, (
            "gradient masking suspected: inside " + name + ", Square broke " + "; ".join(
                f"{k} of {n} samples ({k / n:.1%}) at eps {format_eps(e.eps)}" for e, k in over)
            + f" that {others} left correct"
        ) if over else f"inside {name}, the samples Square broke after {others} left them correct: " + ", ".join(
            f"{k} of {n} at {format_eps(e.eps)}" for e, k in found) + f" (at most {SQUARE_MARGIN:.1%} allowed)", of=name))
    return checks


def _surrogates(store: AttackStore) -> list[Check]:
    model = store.config.get("model") or {}
    train = model.get("surrogate") if model.get("kind") == "snn" else None
    by_method: dict[str, list[str]] = {}  # method -> its attacks that differentiated a surrogate
    for name in store.methods:
        record = store.attack(name)
        if record.surrogate is not None:
            by_method.setdefault(record.method, []).append(name)
    checks = []
    for method, names in by_method.items():
        own = next((nm for nm in names if store.attack(nm).surrogate == train), None)
        if train is None or own is None or len(names) < 2:
            continue
        surrogates = ", ".join(store.attack(nm).surrogate for nm in names)
        findings, compared = [], []
        for eps in _eps_values(store):
            here = [e for e in _at(store, eps) if e.method in names]
            own_e = next((e for e in here if e.method == own), None)
            if own_e is None or len(here) < 2:
                continue
            worst = float(_correct(store, here).double().mean())
            compared.append(f"{worst:.1%} vs {own_e.robust_acc:.1%} at {format_eps(eps)}")
            gap = round((own_e.robust_acc - worst) * store.n_samples)
            if worst < own_e.robust_acc - SURROGATE_MARGIN and gap >= SURROGATE_MIN_SAMPLES:
                findings.append(f"the worst case over surrogates ({surrogates}) leaves {worst:.1%} correct under "
                                f"{method} at eps {format_eps(eps)}, {own_e.robust_acc - worst:.1%} ({gap} samples) below the "
                                f"training surrogate {train}'s own {own_e.robust_acc:.1%}")
        if compared:
            checks.append(Check("surrogates", not findings, (
                "gradient masking suspected: " + "; ".join(findings)
                + ": the training surrogate's gradient hides weaknesses that other surrogates find"
            ) if findings else f"{method}: the worst case over surrogates ({surrogates}) stays within "
                               f"{SURROGATE_MARGIN:.0%} (or {SURROGATE_MIN_SAMPLES - 1} samples) of the training "
                               f"surrogate {train}: "
                               + "; ".join(compared) + " (worst vs own)", of=method))
    return checks


def masking_checks(checks: list[Check], transfer: bool = False) -> list[Check]:
    """The checks that ran and bear on gradient masking (see `masking_verdict`)."""
    return [c for c in checks if c.kind in MASKING_CHECKS and c.passed is not None
            and not (transfer and c.name == "large_eps")]


def masking_verdict(checks: list[Check], transfer: bool = False, threat: str = "frames") -> Check:
    """The verdict in one sentence: masking suspected (naming the checks that found it), no sign
    of it (naming the checks that looked), or not tested (saying what would test it under this
    `threat`). A transfer run tests the source's examples, not the target's gradients: its
    large_eps is no evidence."""
    relevant = masking_checks(checks, transfer)
    failed = [c.name for c in relevant if not c.passed]
    if failed:
        return Check("masking verdict", False, (
            f"gradient masking suspected; evidence: {', '.join(failed)}. Robust accuracy from gradient "
            f"attacks overstates robustness here: report the worst case over all attacks, and attack "
            f"with other gradients (--grad bptr, --attack-surrogate, --grad transfer)"))
    if relevant:
        return Check("masking verdict", True, "no sign of gradient masking in: "
                     + ", ".join(c.name for c in relevant))
    if threat == "events":
        return Check("masking verdict", None, "not tested: add a random floor (event-random, "
                     "event-random-retime) beside the attack")
    return Check("masking verdict", None, "not tested: add square (or autoattack) beside a white-box method, "
                 "several --attack-surrogate, or --check")


# ----------------------------------------------------------------------------- large eps

def large_eps_check(model: nn.Module, store: AttackStore, device: str | torch.device = "cpu",
                    source: nn.Module | None = None, clean: Tensor | None = None,
                    eps: float = LARGE_EPS, steps: int = LARGE_STEPS) -> Check:
    """The --check extra: PGD at a very large eps on the store's samples must leave < 10% correct
    (with several attacker surrogates: their worst case)."""
    clean = clean if clean is not None else store.clean
    if clean is None:
        raise SuiteError("the store keeps no clean inputs; pass clean=rebuild_clean(store, root)")
    base = AttackConfig.from_dict({**store.config.get("attack", {}), "methods": ("pgd",), "eps": (eps,)})
    steps = max(steps, base.steps)
    cfg = replace(base, steps=steps, alpha=MADRY_STEP_RATIO * eps / steps, random_start=True, samples=None,
                  keep_clean=False)
    result = run_attacks(model, TensorDataset(clean, store.labels), cfg, device=device, source=source)
    entry = next((e for e in result.entries if e.method == WORST), result.entries[0])
    label = f"PGD-{steps}" + (" (worst over surrogates)" if entry.method == WORST else "")
    return _large_eps(entry.robust_acc, eps, label, store)


def _large_eps(acc: float, eps: float, label: str, store: AttackStore) -> Check:
    grad = store.config.get("gradient", {}).get("grad", "?")
    passed = acc < LARGE_MAX_ACC
    if passed:
        msg = f"{label} at eps {format_eps(eps)} leaves {acc:.1%} correct (< {LARGE_MAX_ACC:.0%})"
    elif grad.startswith("transfer"):
        msg = (f"{label} at eps {format_eps(eps)} crafted by transfer leaves {acc:.1%} correct: the source's "
               f"examples do not carry over to the target; attack the target itself to test for masking")
    else:
        msg = (f"gradient masking suspected: {label} at eps {format_eps(eps)} still leaves {acc:.1%} "
               f"correct (expected < {LARGE_MAX_ACC:.0%}); the gradients used ({grad}) do not point to the "
               f"model's weaknesses, so robust accuracy here overstates robustness. Try --grad bptr, another "
               f"--attack-surrogate, or a transfer attack from the ANN twin")
    return Check("large_eps", passed, msg)


def _bounds(store: AttackStore) -> Check:
    try:
        verify_bounds(store)
    except SuiteError as exc:
        return Check("bounds", False, str(exc))
    if store.threat == "events":
        return Check("bounds", True, "every adversarial example is a recording changed within its budget in events, "
                                     "its frames in [0, 1]")
    return Check("bounds", True, "every perturbation is within eps and every input in [0, 1]")


def all_passed(checks: list[Check]) -> bool:
    return all(c.passed is not False for c in checks)
