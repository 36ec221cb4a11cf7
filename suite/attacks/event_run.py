"""Running the event threat model's attacks over a batch (suite.attacks.run calls this under
`--threat events`): the recordings behind the batch's frames, each attack once over all its
budgets, and every adversarial recording's frames made by the pipeline itself, so a store's
frames are its recordings' frames bit for bit."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from suite.attacks.event_methods import craft_events
from suite.attacks.event_threat import Change, Recording, check_time_binned
from suite.attacks.methods import batch_seed
from suite.data.events import EVENT_DTYPE
from suite.errors import SuiteError

FIELDS = ("x", "y", "t", "p")


def event_source(dataset: Dataset) -> tuple[Any, Any]:
    """The dataset's reader of recordings and its frame config; SuiteError for data without them,
    or with frames the threat model cannot attack."""
    source, config = getattr(dataset, "source", None), getattr(dataset, "config", None)
    if source is None or config is None or not callable(getattr(source, "events", None)):
        raise SuiteError("--threat events needs event data read from its recordings (an event dataset of "
                         "`suite data list`); this dataset gives frames only")
    check_time_binned(config)
    return source, config


def recordings(dataset: Dataset, indices: range) -> list[Recording]:
    """The clean recordings of samples `indices` of an event dataset read from its recordings."""
    source, config = event_source(dataset)
    return [Recording(*source.events(i), config) for i in indices]


def events_tensor(events: np.ndarray) -> Tensor:
    """Events as int64 [n, 4] (x, y, t, p): what a partial batch file holds (weights_only loads it)."""
    return torch.from_numpy(np.stack([events[f].astype(np.int64) for f in FIELDS], axis=1).reshape(-1, 4))


def events_array(t: Tensor) -> np.ndarray:
    out = np.zeros(len(t), dtype=EVENT_DTYPE)
    for k, f in enumerate(FIELDS):
        out[f] = t[:, k].numpy()
    return out


def change_dict(c: Change) -> dict[str, Any]:
    return {"removed": torch.from_numpy(c.removed), "added": events_tensor(c.added), "moved": c.moved}


def change_of(d: dict[str, Any]) -> Change:
    return Change(d["removed"].numpy(), events_array(d["added"]), int(d["moved"]))


def attack_events(attackers, recs: list[Recording], y: Tensor, start: int, runs: list, step: Callable,
                  result) -> None:
    """Every run (attack, budget) on one batch of recordings, into `result` (a BatchResult):
    adversarial frames, predictions, events changed per sample, and the changes themselves."""
    config = attackers.config
    device = y.device
    by_attack: dict[str, list] = {}
    for attack, k in runs:
        by_attack.setdefault(attack.name, []).append((attack, k))
    for name, group in by_attack.items():
        attack = group[0][0]
        budgets = [int(k) for _, k in group]
        step(group[0])
        crafted = craft_events(attackers.for_attack(attack), attack.method, recs, y, budgets,
                               lambda k, i: batch_seed(config.seed, name, float(k), start + i), config.steps,
                               config.max_shift)
        for n, (_, k) in enumerate(group):
            if n:
                step(group[n])
            changes = crafted[int(k)]
            adv = torch.stack([torch.from_numpy(r.frames(r.apply(c))) for r, c in zip(recs, changes)]).to(device)
            key = (name, k)
            result.adv[key] = adv.cpu()
            with torch.no_grad():
                result.pred[key] = attackers.judge(adv).argmax(1).cpu()  # the evaluated model's predictions
            result.linf[key] = torch.tensor([float(c.changed) for c in changes])
            result.changes[key] = changes
