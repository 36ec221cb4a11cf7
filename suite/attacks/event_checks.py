"""The sanity checks that apply under the event threat model (suite.attacks.checks runs them for
an event store), each naming its evidence:

    beats_random[a]   attack a leaves fewer samples correct than its random floor at every
                      non-zero budget where both ran (event-random for the attacks that add and
                      remove events, event-random-retime for event-retime), or the floor leaves
                      none correct. A gradient attack no better than chance follows a gradient that
                      says nothing about the recordings: masking, or a broken attack.
    greedy_vs_pgd     on the samples that event-sparse and event-pgd both break at the largest
                      budget both ran, the greedy attack's median events changed is no more than
                      rounded PGD's: the greedy reduction keeps only the changes the flip needs.
The robust accuracy of each attack not rising with the budget is the common `monotone` check
(the random floors, whose draws are nested but not chosen, are left out of it).
"""

from __future__ import annotations

import statistics

from suite.results.attacks import SAME, AttackStore, format_eps

FLOOR = {"event-pgd": "event-random", "event-sparse": "event-random", "event-retime": "event-random-retime"}
RANDOM_FLOORS = ("event-random", "event-random-retime")


def _check(kind: str, passed: bool, message: str, of: str | None = None) -> tuple:
    """A check's fields (kind, passed, message, of): suite.attacks.checks makes it a Check."""
    return kind, passed, message, of


def _shared_budgets(store: AttackStore, a: str, b: str) -> list[float]:
    """The non-zero budgets at which both `a` and `b` ran, in `a`'s order."""
    return [e.eps for e in store.for_method(a)
            if e.eps > 0 and any(abs(f.eps - e.eps) < SAME for f in store.for_method(b))]


def event_checks(store: AttackStore) -> list[tuple]:
    n = store.n_samples
    correct = lambda e: round(e.robust_acc * n)  # noqa: E731
    checks = []
    for attack, floor in FLOOR.items():
        if attack not in store.methods or floor not in store.methods:
            continue
        pairs = [(store.entry(attack, k), store.entry(floor, k)) for k in _shared_budgets(store, attack, floor)]
        if not pairs:
            continue
        lost = [(a, f) for a, f in pairs if correct(a) >= correct(f) and correct(f) > 0]
        checks.append(_check("beats_random", not lost, (
            f"{attack} leaves no fewer samples correct than {floor} at " + "; ".join(
                f"{format_eps(a.eps, 'events')} ({a.robust_acc:.1%} vs {f.robust_acc:.1%})" for a, f in lost)
            + ": its gradient finds no more than chance does"
        ) if lost else f"{attack} leaves fewer samples correct than {floor} at every budget (" + "; ".join(
            f"{format_eps(a.eps, 'events')}: {a.robust_acc:.1%} vs {f.robust_acc:.1%}" for a, f in pairs) + ")",
            of=attack))
    if {"event-sparse", "event-pgd"} <= set(store.methods):
        shared = _shared_budgets(store, "event-sparse", "event-pgd")
        if shared:
            sparse, pgd = store.entry("event-sparse", shared[-1]), store.entry("event-pgd", shared[-1])
            both = ((sparse.pred != store.labels) & (pgd.pred != store.labels) & (store.clean_pred == store.labels))
            if bool(both.any()):
                a, b = statistics.median(sparse.linf[both].tolist()), statistics.median(pgd.linf[both].tolist())
                checks.append(_check("greedy_vs_pgd", a <= b, (
                    f"on the {int(both.sum())} samples both break at {format_eps(shared[-1], 'events')}, event-sparse "
                    f"changes a median of {a:g} events, event-pgd {b:g}"
                    + ("" if a <= b else ": the greedy reduction left changes the flip does not need"))))
    return checks
