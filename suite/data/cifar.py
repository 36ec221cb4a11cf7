"""CIFAR-10 and CIFAR-100 in their python format, read without ever running code from a file.

The "python version" of CIFAR (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html) is a
folder of pickles: each batch a dict with `data` [N, 3072] uint8 (per image the 1024 red, then
green, then blue values, row-major 32x32), the labels (`labels`; CIFAR-100: `fine_labels` and
`coarse_labels`), `filenames` and `batch_label`; the meta file a dict of class names. Unpickling
builds whatever objects a file names, which is how a planted pickle runs code, so torchvision's
readers (plain `pickle.load`) are not used: `read_pickle` unpickles with `SafeUnpickler`, which
builds only what the format holds (dicts, lists, str, bytes, numbers and numpy arrays) and refuses
any other class with one SuiteError naming the file. Every place the suite opens a batch (`suite
data check`, training, attacks, CKA) goes through it.

Files are also checked against the md5 sums of the official release (torchvision's lists, the
same check torchvision runs) before they are read, so a truncated download is named as such.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from suite.errors import SuiteError

SIDE = 32
PIXELS = 3 * SIDE * SIDE
# The globals a CIFAR pickle may name (module, name): numpy's array reconstruction (its module is
# numpy.core before numpy 2 and numpy._core from 2 on) and the bytes encoding Python 3 pickles use.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class Refused(pickle.UnpicklingError):
    """A pickle asked for something beyond the CIFAR format (as opposed to being malformed)."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only the types of the CIFAR format (module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise Refused(f"{module}.{name} is not part of the CIFAR format")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("persistent ids are not part of the CIFAR format")


def read_pickle(path: Path) -> Any:
    """A CIFAR pickle's contents; anything beyond the format's types (or not a pickle at all) is
    one SuiteError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SuiteError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Refused as exc:
        raise SuiteError(f"{path} is not a CIFAR batch: refused to unpickle it ({exc})") from None
    except Exception as exc:  # truncated or arbitrary bytes fail in many ways inside pickle
        raise SuiteError(f"{path} is not a readable CIFAR batch ({type(exc).__name__}: {exc})") from None


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, list[int]]:
    """The images [N, 32, 32, 3] uint8 (HWC, as PIL takes them) and labels of one batch file,
    checked against the format."""
    batch = read_pickle(path)
    if not isinstance(batch, dict):
        raise SuiteError(f"{path} is not a CIFAR batch (holds a {type(batch).__name__}, not a dict)")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise SuiteError(f"{path}: 'data' is not an N x {PIXELS} uint8 array")
    if not isinstance(labels, list) or len(labels) != len(data) or not all(isinstance(v, int) for v in labels):
        raise SuiteError(f"{path}: '{label_key}' is not a list of {len(data)} whole numbers")
    return data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1), labels


def official_md5(cls_name: str) -> dict[str, str]:
    """File name -> md5 of the official release (torchvision's lists for its CIFAR10/CIFAR100)."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    return {**{name: md5 for name, md5 in cls.train_list + cls.test_list}, cls.meta["filename"]: cls.meta["md5"]}


def check_md5(path: Path, cls_name: str) -> None:
    """`path` has the md5 of the official release of its name (module docstring)."""
    want = official_md5(cls_name).get(path.name)
    if want is None:
        return
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != want:
        raise SuiteError(f"{path} is corrupt or truncated: its md5 differs from the official {cls_name} release")


class CIFARImages(Dataset):
    """One split of CIFAR-10/100 from its python-format folder: (transform(PIL image), label)."""

    def __init__(self, folder: Path, files: list[str], cls_name: str, label_key: str, transform=None):
        images, labels = [], []
        for name in files:
            path = folder / name
            check_md5(path, cls_name)
            x, y = read_batch(path, label_key)
            images.append(x)
            labels += y
        self.data = np.concatenate(images)
        self.targets = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        img = Image.fromarray(self.data[i])
        return (self.transform(img) if self.transform else img), self.targets[i]
