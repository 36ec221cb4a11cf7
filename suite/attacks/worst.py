"""The worst case per sample over several attacks at one eps: a sample counts as robust only if
every attack failed on it.

For each eps the worst-case entry (method "worst") holds, per sample, the example of the first
attack (in run order) that fooled the model, and `broken_by` names that attack ("autoattack/
apgd-t" for a component of a composite; "clean" when the clean input is already misclassified;
"" for a robust sample). A robust sample keeps the first attack's example, so clean-vs-
adversarial CKA sees a perturbed input for every sample.
"""

from __future__ import annotations

import torch
from torch import Tensor

from suite.results.attacks import SAME, AttackEntry

WORST = "worst"


def worst_case(entries: list[AttackEntry], labels: Tensor, clean_pred: Tensor) -> list[AttackEntry]:
    """One worst-case entry per eps over `entries` (single attacks; none named "worst")."""
    out = []
    for eps in sorted({e.eps for e in entries}):
        group = [e for e in entries if abs(e.eps - eps) < SAME]
        correct = torch.stack([e.pred == labels for e in group])  # [A, N]
        robust = correct.all(dim=0)  # [N]
        first = torch.where(robust, 0, (~correct).int().argmax(dim=0))  # first attack that broke it, [N]
        pick = lambda name: torch.stack([getattr(group[int(k)], name)[i] for i, k in enumerate(first)])  # noqa: E731
        broken_by = [_breaker(group[int(k)], i, bool(r), bool(clean_pred[i] != labels[i]))
                     for i, (k, r) in enumerate(zip(first, robust))]
        pred = pick("pred")
        changes = [group[int(k)].changes[i] for i, k in enumerate(first)] if group[0].changes is not None else None
        out.append(AttackEntry(method=WORST, eps=eps, adv=pick("adv"), pred=pred, linf=pick("linf"),
                               robust_acc=float(robust.double().mean()), broken_by=broken_by, changes=changes))
    return out


def _breaker(entry: AttackEntry, i: int, robust: bool, clean_wrong: bool) -> str:
    if robust:
        return ""
    if clean_wrong:
        return "clean"
    inner = entry.broken_by[i] if entry.broken_by else ""
    return f"{entry.method}/{inner}" if inner and inner != "clean" else entry.method
