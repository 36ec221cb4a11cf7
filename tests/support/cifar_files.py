"""Small CIFAR-10/100 folders in the real python format (pickled dicts, as the official release),
and the md5 table they need in place of the official one."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

LAYOUT = {  # dataset -> (folder, batch files, label key, meta file, meta key, classes)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels",
                "batches.meta", "label_names", 10),
    "cifar100": ("cifar-100-python", ["train", "test"], "fine_labels", "meta", "fine_label_names", 100),
}


def image_rows(n: int, seed: int) -> np.ndarray:
    """n images as the format stores them: [n, 3072] uint8, per image the R, G, B planes."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar(root: Path, name: str = "cifar10", per_batch: int = 4) -> dict[str, str]:
    """A copy of `name` under root with `per_batch` images per batch file (labels k % classes,
    images from seed = the file's position); returns file name -> md5 of what was written."""
    folder, batches, label_key, meta, meta_key, classes = LAYOUT[name]
    base = root / folder
    base.mkdir(parents=True, exist_ok=True)
    (base / "readme.html").write_text("<html>not a batch</html>")
    for k, batch in enumerate(batches):
        content = {"batch_label": f"{batch} of {len(batches)}", "data": image_rows(per_batch, k),
                   label_key: [j % classes for j in range(per_batch)],
                   "filenames": [f"img_{k}_{j}.png" for j in range(per_batch)]}
        (base / batch).write_bytes(pickle.dumps(content, protocol=2))
    (base / meta).write_bytes(pickle.dumps({meta_key: [f"class{c}" for c in range(classes)]}, protocol=2))
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in base.iterdir() if not p.suffix}


class Planted:
    """Unpickling this object creates the file `target`: what a planted pickle could do."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))
