"""CKA runs from checkpoints: build the loaders, run one comparison, save it to reports/.

This is what `suite cka` calls; each comparison itself lives in suite.cka.compare.

Under torchrun (`torchrun --nproc_per_node N -m suite cka ...`) every process loads the
models and takes a contiguous block of whole batches (`data.loaders.shard_loader`); the
HSIC sums are added over the processes, so the result is that of one process over all the
batches. Rank 0 writes the result file and shows progress; the others write nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from suite import distributed
from suite.checkpoint import Checkpoint, load_model
from suite.cka.compare import compare_layers, compare_models, compare_time
from suite.cka.core import MIN_SAMPLES
from suite.cka.features import check_time_mode
from suite.results.cka import CKAResult
from suite.config import select_device
from suite.data import DataSpec, get_dataset_info, resolve_spec
from suite.data.loaders import eval_loader, shard_loader, subset_indices
from suite.data.paired import NAME_PAIRS, load_paired
from suite.errors import SuiteError
from suite.progress import progress_bar
from suite.files import ensure_out_dir
from suite.settings import CKA_BATCH_SIZE, CKA_SAMPLES

COMPARES = {"models": "models", "layers": "layers", "time": "time",
            "clean adv": "clean-adv", "clean-adv": "clean-adv", "static event": "static-event",
            "static-event": "static-event"}


def parse_compare(words: list[str]) -> str:
    """`--compare clean adv` arrives as words; return the canonical comparison name."""
    key = " ".join(w.strip().lower() for w in words if w.strip()).replace("_", "-")
    if key not in COMPARES:
        raise SuiteError(f"unknown comparison {key!r}; choose models, layers, time, 'clean adv' or 'static event'")
    return COMPARES[key]


class _Field(Dataset):
    """One input of a paired dataset, as (x, label, index): lets each model have its own loader.
    With `as_image`, event frames [T, 2, H, W] become an event-count image [channels, H, W]."""

    def __init__(self, paired: Dataset, field: int, as_image: int | None = None):
        self.paired, self.field, self.as_image = paired, field, as_image

    def __len__(self) -> int:
        return len(self.paired)

    def __getitem__(self, k: int):
        item = self.paired[k]
        x = item[self.field]
        return (event_image(x, self.as_image) if self.as_image else x), item[2], k


def event_image(frames: Tensor, channels: int) -> Tensor:
    """The usual event-count image of a recording: frames [T, 2, H, W] summed over time and
    polarity, scaled to [0, 1] by its maximum, repeated to `channels`: [channels, H, W]."""
    img = frames.sum(dim=(0, 1))  # [H, W]
    peak = img.max()
    img = img / peak if peak > 0 else img
    return img.unsqueeze(0).expand(channels, -1, -1).contiguous()


def event_partner(static_name: str) -> str:
    """The event recording of a static dataset: ncaltech101 for caltech101, else <name>-dvs."""
    for static, event in NAME_PAIRS:
        if static == static_name:
            return event
    return f"{static_name}-dvs"


def paired_loaders(ckpt_static: Checkpoint, ckpt_event: Checkpoint | None, data_root: Path, split: str,
                   samples: int | None, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    """Aligned loaders of the same samples: static images and their event recordings.

    Two models: the first sees its static images, the second the paired event frames of its
    own event dataset. One model (`ckpt_event` None): it sees its static images and the
    event-count images (`event_image`) of their recordings in its static dataset's event
    partner (digits -> digits-dvs, caltech101 -> ncaltech101), at the same size.
    """
    static_spec = ckpt_static.data_spec
    if get_dataset_info(static_spec.name).kind != "static":
        raise SuiteError(f"--model must be trained on static images; got {static_spec.name}")
    if ckpt_event is None:
        event_spec = resolve_spec(DataSpec(event_partner(static_spec.name), size=static_spec.size,
                                           seed=static_spec.seed))
    else:
        event_spec = ckpt_event.data_spec
        if get_dataset_info(event_spec.name).kind != "event":
            raise SuiteError(f"--model2 must be trained on events; got {event_spec.name}")
    paired = load_paired(static_spec, event_spec, data_root, split)
    chosen = subset_indices(len(paired), samples, seed)
    as_image = ckpt_static.model_config.in_channels if ckpt_event is None else None
    return tuple(DataLoader(Subset(_Field(paired, k, as_image if k == 1 else None), chosen), batch_size=batch_size)
                 for k in (0, 1))


def _check_options(time: str, batch_size: int) -> None:
    """The options every CKA run shares: the time reduction and a batch of >= MIN_SAMPLES."""
    check_time_mode(time)
    if batch_size < MIN_SAMPLES:
        raise SuiteError(f"--batch-size {batch_size} is too small: the unbiased CKA estimator needs "
                         f">= {MIN_SAMPLES} samples per batch")


@dataclass
class CKARun:
    """What a CKA run produced: the result, where it was saved, and which models it compared."""

    result: CKAResult
    path: Path
    label_a: str
    label_b: str


def run_cka(*, compare: str, model: Path, model2: Path | None = None, dataset: str | None = None,
            layers: str | None = None, time: str = "mean", samples: int | None = CKA_SAMPLES,
            batch_size: int = CKA_BATCH_SIZE, seed: int = 0, device: str = "auto", data_root: Path = Path("datasets"),
            out: Path = Path("reports"), name: str | None = None, split: str = "test", n_boot: int = 0,
            show_progress: bool = True) -> CKARun:
    """Run `models`, `layers`, `time` or `static-event` CKA for checkpoints; save the HDF5 result.

    static-event: `model` sees the static images of its dataset, `model2` the paired event
    frames of its dataset (digits <-> digits-dvs by source index, caltech101 <-> ncaltech101 by
    file name); both see the same samples. Without `model2`, `model` sees both the static
    images and the event-count images of their recordings (see `paired_loaders`)."""
    _check_options(time, batch_size)
    if compare not in ("models", "layers", "time", "static-event"):
        raise SuiteError(f"comparison {compare!r} is not run by run_cka")
    if model is None:
        raise SuiteError(f"--compare {compare.replace('-', ' ')} needs --model (a checkpoint)")
    if compare == "models" and model2 is None:
        raise SuiteError("--compare models needs --model2 (the second checkpoint)")
    ensure_out_dir(out)
    dev = select_device(device)
    with distributed.session(dev):
        model_a, ckpt_a = load_model(model, dev)
        model_b, ckpt_b = load_model(model2, dev) if model2 is not None else (model_a, ckpt_a)
        config = {"compare": compare, "model": str(model), "model_config": ckpt_a.model_config.to_dict(),
                  "split": split, "samples": samples, "batch_size": batch_size, "seed": seed, "layers": layers}
        if model2 is not None:
            config.update(model2=str(model2), model2_config=ckpt_b.model_config.to_dict())
        loader_b = None
        if compare == "static-event":
            loader, loader_b = paired_loaders(ckpt_a, ckpt_b if model2 is not None else None, data_root, split,
                                              samples, batch_size, seed)
            config.update(data_spec=ckpt_a.data_spec.to_dict(),
                          event_input="frames" if model2 else "event-count image")
            loader_b = shard_loader(loader_b)
        else:
            spec = ckpt_a.data_spec_for(dataset)
            loader = eval_loader(spec, data_root, split, samples, batch_size, seed, pin_memory=dev.type == "cuda")
            config.update(data_spec=spec.to_dict())
        loader = shard_loader(loader)
        config["processes"] = distributed.world_size()

        with progress_bar(show_progress and distributed.is_main()) as bar:
            task = bar.add_task(f"cka {compare}", total=len(loader), info="")
            advance = lambda n: bar.update(task, advance=n)  # noqa: E731
            common = dict(device=dev, progress=advance, n_boot=n_boot)
            if compare == "time":
                result = compare_time(model_a, loader, layers, **common)
            elif compare == "layers":
                result = compare_layers(model_a, loader, layers, time=time, **common)
            else:
                result = compare_models(model_a, model_b, loader, layers, layers, time=time, loader_b=loader_b,
                                        compare=compare, **common)
        two = model2 is not None
        label_a = Path(model).stem
        label_b = Path(model2).stem if two else label_a
        stem = name or f"cka-{compare}-{label_a}" + (f"-vs-{label_b}" if two else "")
        path = distributed.broadcast_from_main(lambda: result.save(Path(out) / f"{stem}.h5", config,
                                                                   device=str(dev)))
    return CKARun(result, path, label_a, label_b)


def run_clean_adv(*, attack: Path, model: Path | None = None, other_model: bool = False,
                  method: str | None = None, layers: str | None = None, time: str = "mean",
                  batch_size: int = CKA_BATCH_SIZE, device: str = "auto", data_root: Path = Path("datasets"),
                  out: Path = Path("reports"), name: str | None = None, n_boot: int = 0,
                  show_progress: bool = True) -> list[CKARun]:
    """Clean-vs-adversarial CKA for every eps of an attack store; one result file per eps.

    The model is the attacked one (the store's checkpoint) unless `model` is given; a model
    other than the attacked one needs `other_model=True` (e.g. the ANN twin's view of
    examples crafted on the SNN). Its data must match the store's either way.
    """
    from suite.results.attacks import check_data, check_model, format_eps, read_store, rebuild_clean
    from suite.cka.clean_adv import clean_vs_adv

    _check_options(time, batch_size)
    store = read_store(attack)
    model = Path(model) if model is not None else Path(store.config.get("checkpoint", ""))
    ensure_out_dir(out)
    dev = select_device(device)
    with distributed.session(dev):
        net, ckpt = load_model(model, dev)
        if not other_model:
            check_model(store, ckpt.model_config)
        check_data(store, ckpt.data_spec)
        clean = store.clean if store.clean is not None else rebuild_clean(store, data_root)
        n_batches = len(distributed.shard(range(0, store.n_samples, batch_size))) \
            * len(store.for_method(method or store.methods[0]))
        with progress_bar(show_progress and distributed.is_main()) as bar:
            task = bar.add_task("cka clean adv", total=n_batches, info="")
            results = clean_vs_adv(net, store, layers=layers, time=time, batch_size=batch_size, device=dev,
                                   method=method, clean=clean, n_boot=n_boot,
                                   progress=lambda n: bar.update(task, advance=n))
        label = Path(model).stem
        base = name or f"cka-clean-adv-{Path(attack).stem}" + (f"-on-{label}" if other_model else "")
        config = {"compare": "clean-adv", "attack": str(attack), "model": str(model),
                  "model_config": ckpt.model_config.to_dict(), "batch_size": batch_size, "layers": layers,
                  "processes": distributed.world_size()}
        runs = []
        for eps, result in results.items():
            stem = f"{base}-{result.config['method']}-eps{format_eps(eps).replace('/', '_')}"
            path = distributed.broadcast_from_main(lambda: result.save(Path(out) / f"{stem}.h5", config,
                                                                   device=str(dev)))
            runs.append(CKARun(result, path, label, label))
    return runs


def check_comparison(compare: str, *, attack: Path | None = None, model2: Path | None = None,
                     method: str | None = None, other_model: bool = False) -> None:
    """The options that belong to one comparison: clean adv needs an attack store and takes one
    model; the store's options (--attack, --method, --other-model) belong to clean adv only."""
    if compare == "clean-adv":
        if attack is None:
            raise SuiteError("--compare clean adv needs --attack (an adversarial store written by `suite attack`)")
        if model2 is not None:
            raise SuiteError("--compare clean adv takes one model (--model); --model2 is for models and static event")
        return
    for flag, given in (("--attack", attack is not None), ("--method", method is not None),
                        ("--other-model", other_model)):
        if given:
            raise SuiteError(f"{flag} belongs to --compare clean adv, not --compare {compare.replace('-', ' ')}")


def run_comparison(*, compare: str, model: Path | None = None, model2: Path | None = None,
                   attack: Path | None = None, method: str | None = None, other_model: bool = False,
                   dataset: str | None = None, split: str = "test", layers: str | None = None,
                   time: str = "mean", samples: int | None = CKA_SAMPLES, batch_size: int = CKA_BATCH_SIZE, n_boot: int = 0,
                   seed: int = 0, device: str = "auto", data_root: Path = Path("datasets"),
                   out: Path = Path("reports"), name: str | None = None) -> list[CKARun]:
    """`suite cka`: check the options against the comparison, then run it. Clean adv gives one
    run per eps of the store (`run_clean_adv`), every other comparison one run (`run_cka`)."""
    check_comparison(compare, attack=attack, model2=model2, method=method, other_model=other_model)
    if compare == "clean-adv":
        return run_clean_adv(attack=attack, model=model, other_model=other_model, method=method, layers=layers,
                             time=time, batch_size=batch_size, device=device, data_root=data_root, out=out,
                             name=name, n_boot=n_boot)
    return [run_cka(compare=compare, model=model, model2=model2, dataset=dataset, layers=layers, time=time,
                    samples=samples, batch_size=batch_size, seed=seed, device=device, data_root=data_root,
                    out=out, name=name, split=split, n_boot=n_boot)]
