"""Seeded per-class train/test splits for datasets that ship without an official one.

The split of a class depends only on its name, the names of its samples and the seed, so two
datasets holding the same files (Caltech101 images and N-Caltech101 recordings) split them the
same way, which keeps paired static/event samples on the same side.
"""

from __future__ import annotations

import zlib
from collections import defaultdict

import numpy as np


def class_split(names: list[str], classes: list[str], split: str, seed: int,
                test_fraction: float = 0.1) -> list[int]:
    """Indices (sorted) of `split` ("train" or "test") among samples `names` of classes `classes`.

    Within each class the names are sorted, shuffled by a generator seeded with (seed, crc32 of
    the class name), and the last round(n * test_fraction) go to test (at least one when the
    class has two or more samples). test_fraction=0.1 gives the 9:1 split used for CIFAR10-DVS
    and Caltech101 / N-Caltech101.
    """
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(classes):
        by_class[c].append(i)
    chosen: list[int] = []
    for c, members in by_class.items():
        members = sorted(members, key=lambda i: names[i])
        rng = np.random.default_rng([seed, zlib.crc32(c.encode())])
        order = [members[j] for j in rng.permutation(len(members))]
        n_test = int(round(len(order) * test_fraction))
        if len(order) >= 2:
            n_test = max(1, n_test)
        cut = len(order) - n_test
        chosen.extend(order[cut:] if split == "test" else order[:cut])
    return sorted(chosen)
