"""Paired static/event data: the same image as a static picture and as an event recording.

Two kinds of pairs:
- a static dataset and its simulated twin (`digits` <-> `digits-dvs`, `cifar10` <->
  `cifar10-dvs`, ...): event sample j was simulated from static sample `source_index(j)` of the
  same split and seed;
- `caltech101` <-> `ncaltech101`: recordings and images share file names
  (`101_ObjectCategories/<class>/image_0001.jpg` vs `Caltech101/<class>/image_0001.bin`), and
  both datasets split each class the same way, so a pair is on the same side in both. Only names
  present in both are paired (Caltech101's Faces and N-Caltech101's background have no partner).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from suite.data.registry import DataSpec, load_dataset, resolve_spec
from suite.errors import SuiteError

NAME_PAIRS = {("caltech101", "ncaltech101")}


class PairedDataset(Dataset):
    """(static x [C, H, W], event frames [T, 2, S, S], label) for each (static index, event index)
    pair; the label is the static dataset's."""

    def __init__(self, static: Dataset, events: Dataset, pairs: list[tuple[int, int]]):
        self.static, self.events, self.pairs = static, events, pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int):
        i, j = self.pairs[k]
        x_static, label = self.static[i]
        x_events, _ = self.events[j]
        return x_static, x_events, int(label)


def pairs_by_source_index(events: Dataset) -> list[tuple[int, int]]:
    """(static index, event index) for a simulated event dataset."""
    return [(events.source_index(j), j) for j in range(len(events))]


def pairs_by_name(static: Dataset, events: Dataset) -> list[tuple[int, int]]:
    """(static index, event index) for samples whose keys ("<class>/<file stem>") agree."""
    where = {static.key(i): i for i in range(len(static))}
    return [(where[k], j) for j in range(len(events)) if (k := events.key(j)) in where]


def load_paired(static_spec: DataSpec, event_spec: DataSpec, root: str | Path,
                split: str = "test") -> PairedDataset:
    """Paired data of a static dataset and an event dataset that records the same images."""
    static_spec, event_spec = resolve_spec(static_spec), resolve_spec(event_spec)
    pair = (static_spec.name, event_spec.name)
    if event_spec.name == f"{static_spec.name}-dvs":
        if static_spec.seed != event_spec.seed:
            raise SuiteError(f"{static_spec.name} (seed {static_spec.seed}) and {event_spec.name} "
                             f"(seed {event_spec.seed}) pair only with the same seed (it picks the split)")
        static = load_dataset(static_spec, root, split)
        events = load_dataset(event_spec, root, split)
        return PairedDataset(static, events, pairs_by_source_index(events))
    if pair in NAME_PAIRS:
        static = load_dataset(static_spec, root, split)
        events = load_dataset(event_spec, root, split)
        pairs = pairs_by_name(static, events)
        if not pairs:
            raise SuiteError(f"no {split} files of {static_spec.name} and {event_spec.name} "
                             f"under {root} share a name")
        return PairedDataset(static, events, pairs)
    valid = ", ".join(f"{a}/{b}" for a, b in sorted(NAME_PAIRS))
    raise SuiteError(f"{static_spec.name} and {event_spec.name} are not paired data; pair a static "
                     f"dataset with its -dvs twin (digits/digits-dvs, ...) or {valid}")
