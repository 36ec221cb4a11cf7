"""Static image datasets: the embedded `digits` (scikit-learn), CIFAR-10/100 (suite.data.cifar) and
torchvision's Caltech101."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from suite.data.download import guarded_download
from suite.data.registry import DataSpec, DatasetInfo, Reader, register
from suite.errors import SuiteError


class IndexedDataset(Dataset):
    """Wrap a dataset so each sample also knows its index (used to pair and rebuild batches)."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i][:2]
        return x, y, i


# ----------------------------------------------------------------------------- digits
DIGITS_LEVELS = 16  # scikit-learn's digits are counts 0..16 (4x4 blocks of a 32x32 bitmap)
DIGITS_SIZES = (8, 16, 32)  # the native 8x8 and two bilinear upsamplings
DIGITS_TEST_FRACTION = 0.25


@lru_cache(maxsize=8)
def digits_arrays(size: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's 1797 8x8 digits, bilinearly upsampled to size x size, values in [0, 1],
    split 75/25 stratified by class with `seed`: {"train": (x [N,1,S,S], y [N]), "test": ...}."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / DIGITS_LEVELS).unsqueeze(1)  # [N,1,8,8]
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.clamp_(0.0, 1.0)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(idx, test_size=DIGITS_TEST_FRACTION, stratify=bunch.target,
                                           random_state=seed)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return {"train": (images[train_idx], labels[train_idx]), "test": (images[test_idx], labels[test_idx])}


def build_digits(spec: DataSpec, root: Path, split: str, augment: bool) -> Dataset:
    if spec.size not in DIGITS_SIZES:
        allowed = ", ".join(map(str, DIGITS_SIZES[:-1])) + f" or {DIGITS_SIZES[-1]}"
        raise SuiteError(f"digits size must be {allowed}, got {spec.size}")
    if spec.channels not in (1, 3):
        raise SuiteError(f"digits channels must be 1 or 3, got {spec.channels}")
    x, y = digits_arrays(spec.size, spec.seed)[split]
    if spec.channels == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    return TensorDataset(x, y)


register(DatasetInfo(
    name="digits", kind="static", channels=1, size=16,
    classes=tuple(str(i) for i in range(10)), folder="(embedded in scikit-learn)",
    source="scikit-learn (bundled, always available)", build=build_digits, offline=True,
))


# ----------------------------------------------------------------------------- torchvision
def torchvision_download(cls, root: Path, **kwargs) -> None:
    """Run a torchvision dataset's own downloader through `guarded_download`."""
    guarded_download(cls.__name__, lambda r: cls(root=r, download=True, **kwargs), root)


def _cifar_missing(folder: str, names: list[str]):
    def missing(root: Path) -> list[str]:
        return [n for n in names if not (root / folder / n).is_file()]
    return missing


CIFAR_SIDE = 32
CIFAR_CROP_PADDING = 4  # the standard CIFAR augmentation: pad 4, random 32x32 crop, flip (He et al. 2016)


# the batch files of each split, the key of the labels and the meta file (suite.data.cifar)
CIFAR_FILES = {
    "CIFAR10": ({"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}, "labels",
                "batches.meta"),
    "CIFAR100": ({"train": ["train"], "test": ["test"]}, "fine_labels", "meta"),
}


def _cifar_build(cls_name: str, folder: str):
    def build(spec: DataSpec, root: Path, split: str, augment: bool) -> Dataset:
        import torchvision.transforms as T

        from suite.data.cifar import CIFARImages

        steps = [T.RandomCrop(CIFAR_SIDE, padding=CIFAR_CROP_PADDING), T.RandomHorizontalFlip()] if augment else []
        if spec.size != CIFAR_SIDE:
            steps.append(T.Resize(spec.size, antialias=True))
        steps.append(T.ToTensor())
        files, label_key, _ = CIFAR_FILES[cls_name]
        return CIFARImages(root / folder, files[split], cls_name, label_key, T.Compose(steps))
    return build


def _cifar_raw_files(folder: str, cls_name: str):
    """The pickled files of a CIFAR folder that are present (every batch and the meta file; not
    readme.html), each checked against its official md5 and unpickled safely (suite.data.cifar)."""
    def read(path: Path) -> object:
        from suite.data.cifar import check_md5, read_pickle

        check_md5(path, cls_name)
        return read_pickle(path)

    def raw_files(root: Path) -> list[tuple[Path, Reader]]:
        splits, _, meta = CIFAR_FILES[cls_name]
        names = [*splits["train"], *splits["test"], meta]
        return [(p, read) for p in sorted(root / folder / n for n in names) if p.is_file()]
    return raw_files


def _cifar_download(cls_name: str):
    def download(root: Path) -> None:
        import torchvision
        torchvision_download(getattr(torchvision.datasets, cls_name), root)
    return download


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

register(DatasetInfo(
    name="cifar10", kind="static", channels=3, size=CIFAR_SIDE, classes=CIFAR10_CLASSES,
    folder="cifar-10-batches-py", source="https://www.cs.toronto.edu/~kriz/cifar.html",
    build=_cifar_build("CIFAR10", "cifar-10-batches-py"), download=_cifar_download("CIFAR10"),
    missing=_cifar_missing("cifar-10-batches-py",
                           [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]),
    normalisation=((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),  # training-set mean and std
    raw_files=_cifar_raw_files("cifar-10-batches-py", "CIFAR10"),
))

register(DatasetInfo(
    name="cifar100", kind="static", channels=3, size=CIFAR_SIDE, classes=tuple(f"class{i}" for i in range(100)),
    folder="cifar-100-python", source="https://www.cs.toronto.edu/~kriz/cifar.html",
    build=_cifar_build("CIFAR100", "cifar-100-python"), download=_cifar_download("CIFAR100"),
    missing=_cifar_missing("cifar-100-python", ["train", "test", "meta"]),
    normalisation=((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),  # training-set mean and std
    raw_files=_cifar_raw_files("cifar-100-python", "CIFAR100"),
))


# ----------------------------------------------------------------------------- caltech101
CALTECH101_FOLDERS = (
    "BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "Motorbikes", "accordion", "airplanes",
    "anchor", "ant", "barrel", "bass", "beaver", "binocular", "bonsai", "brain", "brontosaurus",
    "buddha", "butterfly", "camera", "cannon", "car_side", "ceiling_fan", "cellphone", "chair",
    "chandelier", "cougar_body", "cougar_face", "crab", "crayfish", "crocodile", "crocodile_head",
    "cup", "dalmatian", "dollar_bill", "dolphin", "dragonfly", "electric_guitar", "elephant", "emu",
    "euphonium", "ewer", "ferry", "flamingo", "flamingo_head", "garfield", "gerenuk", "gramophone",
    "grand_piano", "hawksbill", "headphone", "hedgehog", "helicopter", "ibis", "inline_skate",
    "joshua_tree", "kangaroo", "ketch", "lamp", "laptop", "llama", "lobster", "lotus", "mandolin",
    "mayfly", "menorah", "metronome", "minaret", "nautilus", "octopus", "okapi", "pagoda", "panda",
    "pigeon", "pizza", "platypus", "pyramid", "revolver", "rhino", "rooster", "saxophone", "schooner",
    "scissors", "scorpion", "sea_horse", "snoopy", "soccer_ball", "stapler", "starfish", "stegosaurus",
    "stop_sign", "strawberry", "sunflower", "tick", "trilobite", "umbrella", "watch", "water_lilly",
    "wheelchair", "wild_cat", "windsor_chair", "wrench", "yin_yang",
)  # the folders of 101_ObjectCategories, sorted as torchvision sorts them
CALTECH101_CLASSES = tuple(c for c in CALTECH101_FOLDERS if c != "BACKGROUND_Google")  # torchvision's 101
CALTECH101_IMAGES = "caltech101/101_ObjectCategories"


def _convert(img, mode: str):
    return img.convert(mode)


class Caltech101Images(Dataset):
    """torchvision's Caltech101 restricted to one split: (x [C, S, S] in [0, 1], label).

    `key(i)` is "<class>/image_0001", the name N-Caltech101 shares (paired data uses it). The
    split is `class_split` (9:1 per class, seeded), the same N-Caltech101 uses, so a pair
    lands on the same side in both datasets.
    """

    def __init__(self, spec: DataSpec, root: Path, split: str, augment: bool):
        from functools import partial

        import torchvision
        import torchvision.transforms as T

        from suite.data.splits import class_split

        steps = [T.Lambda(partial(_convert, mode="RGB" if spec.channels == 3 else "L")),
                 T.Resize((spec.size, spec.size), antialias=True)]
        if augment:
            steps.append(T.RandomHorizontalFlip())
        steps.append(T.ToTensor())
        try:
            self.base = torchvision.datasets.Caltech101(str(root), transform=T.Compose(steps), download=False)
        except (RuntimeError, ValueError) as exc:
            raise SuiteError(f"Caltech101 under {root / 'caltech101'} is unusable: {exc}") from None
        cats = self.base.categories
        names = [f"{cats[y]}/image_{n:04d}" for y, n in zip(self.base.y, self.base.index)]
        classes = [cats[y] for y in self.base.y]
        unknown = sorted(set(cats) - set(CALTECH101_CLASSES))
        if unknown:
            raise SuiteError(f"{root / CALTECH101_IMAGES} holds unexpected class folders: {', '.join(unknown)}")
        self.indices = class_split(names, classes, split, spec.seed)
        self.keys = [names[j] for j in self.indices]
        self.targets = [CALTECH101_CLASSES.index(classes[j]) for j in self.indices]
        self.root = root

    def __len__(self) -> int:
        return len(self.indices)

    def key(self, i: int) -> str:
        return self.keys[i]

    def __getitem__(self, i: int):
        try:
            x, _ = self.base[self.indices[i]]
        except (OSError, SyntaxError, ValueError) as exc:
            path = self.root / CALTECH101_IMAGES / f"{self.keys[i]}.jpg"
            raise SuiteError(f"{path} is missing or corrupt: {exc}") from None
        return x, self.targets[i]


def _caltech101_missing(root: Path) -> list[str]:
    base = root / CALTECH101_IMAGES
    return [f"101_ObjectCategories/{c}/*.jpg" for c in CALTECH101_FOLDERS
            if not any((base / c).glob("*.jpg"))]


def _caltech101_raw_files(root: Path) -> list[tuple[Path, Reader]]:
    return [(p, _read_image) for p in sorted((root / CALTECH101_IMAGES).glob("*/*.jpg"))]


def _read_image(path: Path) -> object:
    from PIL import Image
    with Image.open(path) as img:
        img.load()
    return img


def _caltech101_download(root: Path) -> None:
    import torchvision
    torchvision_download(torchvision.datasets.Caltech101, root)


register(DatasetInfo(
    name="caltech101", kind="static", channels=3, size=64, classes=CALTECH101_CLASSES,
    folder="caltech101", source="https://data.caltech.edu/records/mzrjq-6wc02",
    build=lambda spec, root, split, augment: Caltech101Images(spec, root, split, augment),
    missing=_caltech101_missing, download=_caltech101_download, raw_files=_caltech101_raw_files,
))
