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

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from suite.data.registry import DataSpec, get_dataset_info, load_dataset
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


def event_partner(static_name: str) -> str:
    """The event recording of a static dataset: ncaltech101 for caltech101, else <name>-dvs."""
    for static, event in NAME_PAIRS:
        if static == static_name:
            return event
    return f"{static_name}-dvs"


def event_image(frames: Tensor, channels: int) -> Tensor:
    """The usual event-count image of a recording: frames [T, 2, H, W] summed over time and
    polarity, scaled to [0, 1] by its maximum, repeated to `channels`: [channels, H, W]."""
    img = frames.sum(dim=(0, 1))  # [H, W]
    peak = img.max()
    img = img / peak if peak > 0 else img
    return img.unsqueeze(0).expand(channels, -1, -1).contiguous()


def event_spec_for(static: DataSpec, event: DataSpec | None = None) -> DataSpec:
    """The event data paired with static data `static`: `event` itself (checked to be event
    data), or by default the recordings of `static`'s own images at its size and seed."""
    if get_dataset_info(static.name).kind != "static":
        raise SuiteError(f"the static side of a static-event pair must be static images; got {static.name}")
    if event is None:
        return DataSpec(event_partner(static.name), size=static.size, seed=static.seed)
    if get_dataset_info(event.name).kind != "event":
        raise SuiteError(f"the event side of a static-event pair must be event data; got {event.name}")
    return event


class _Field(Dataset):
    """One input of a paired dataset, as (x, label, index): lets each model have its own loader.
    With `as_image`, event frames [T, 2, H, W] become an event-count image [as_image, H, W]."""

    def __init__(self, paired: Dataset, field: int, as_image: int | None = None):
        self.paired, self.field, self.as_image = paired, field, as_image

    def __len__(self) -> int:
        return len(self.paired)

    def __getitem__(self, k: int):
        item = self.paired[k]
        x = item[self.field]
        return (event_image(x, self.as_image) if self.as_image else x), item[2], k


def paired_loaders(paired: PairedDataset, chosen: list[int], batch_size: int,
                   as_image: int | None = None) -> tuple[DataLoader, DataLoader]:
    """Aligned ordered loaders of the pairs `chosen`: the static images, and their event
    recordings as frames, or (`as_image` channels) as event-count images (`event_image`) for
    a model that takes images."""
    return tuple(DataLoader(Subset(_Field(paired, k, as_image if k == 1 else None), chosen), batch_size=batch_size)
                 for k in (0, 1))
