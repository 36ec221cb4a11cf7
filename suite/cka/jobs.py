"""CKA runs from checkpoints: build the loaders, run one comparison, save it to reports/.

This is what `suite cka` calls; each comparison itself lives in suite.cka.compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suite.checkpoint import Checkpoint, load_model
from suite.cka.compare import compare_layers, compare_models, compare_time
from suite.cka.results import CKAResult
from suite.config import select_device
from suite.data import DataSpec, get_dataset_info, resolve_spec
from suite.data.loaders import eval_loader
from suite.errors import SuiteError
from suite.progress import progress_bar
from suite.store import ensure_out_dir

COMPARES = {"models": "models", "layers": "layers", "time": "time",
            "clean adv": "clean-adv", "clean-adv": "clean-adv", "static event": "static-event",
            "static-event": "static-event"}
TIME_MODES = ("mean", "concat", "each")


def parse_compare(words: list[str]) -> str:
    """`--compare clean adv` arrives as words; return the canonical comparison name."""
    key = " ".join(w.strip().lower() for w in words if w.strip()).replace("_", "-")
    if key not in COMPARES:
        raise SuiteError(f"unknown comparison {key!r}; choose models, layers, time, 'clean adv' or 'static event'")
    return COMPARES[key]


def spec_for(ckpt: Checkpoint, dataset: str | None) -> DataSpec:
    """The checkpoint's own data, or `dataset` shaped to fit the checkpoint's model."""
    own = ckpt.data_spec
    if dataset is None or dataset == own.name:
        return own
    info = get_dataset_info(dataset)
    cfg = ckpt.model_config
    return resolve_spec(DataSpec(dataset, size=cfg.input_size,
                                 channels=cfg.in_channels if info.kind == "static" else None,
                                 timesteps=cfg.timesteps if info.kind == "event" else None, seed=own.seed))


@dataclass
class CKARun:
    """What a CKA run produced: the result, where it was saved, and which models it compared."""

    result: CKAResult
    path: Path
    label_a: str
    label_b: str


def run_cka(*, compare: str, model: Path, model2: Path | None = None, dataset: str | None = None,
            layers: str | None = None, time: str = "mean", samples: int | None = 512,
            batch_size: int = 128, seed: int = 0, device: str = "auto", data_root: Path = Path("datasets"),
            out: Path = Path("reports"), name: str | None = None, split: str = "test", n_boot: int = 0,
            show_progress: bool = True) -> CKARun:
    """Run `models`, `layers` or `time` CKA for checkpoints and save the HDF5 result."""
    if time not in TIME_MODES:
        raise SuiteError(f"unknown --time {time!r}; choose mean, concat or each")
    if compare == "models" and model2 is None:
        raise SuiteError("--compare models needs --model2 (the second checkpoint)")
    if batch_size < 4:
        raise SuiteError(f"--batch-size {batch_size} is too small: the unbiased CKA estimator needs >= 4 samples per batch")
    ensure_out_dir(out)
    dev = select_device(device)
    model_a, ckpt_a = load_model(model, dev)
    loader = eval_loader(spec_for(ckpt_a, dataset), data_root, split, samples, batch_size, seed)
    config = {"compare": compare, "model": str(model), "model_config": ckpt_a.model_config.to_dict(),
              "data_spec": spec_for(ckpt_a, dataset).to_dict(), "split": split, "samples": samples,
              "batch_size": batch_size, "seed": seed, "layers": layers}
    with progress_bar(show_progress) as bar:
        task = bar.add_task(f"cka {compare}", total=len(loader), info="")
        advance = lambda n: bar.update(task, advance=n)  # noqa: E731
        if compare == "models":
            model_b, ckpt_b = load_model(model2, dev)
            config.update(model2=str(model2), model2_config=ckpt_b.model_config.to_dict())
            result = compare_models(model_a, model_b, loader, layers, layers, device=dev, time=time,
                                    progress=advance, n_boot=n_boot)
        elif compare == "layers":
            result = compare_layers(model_a, loader, layers, device=dev, time=time, progress=advance, n_boot=n_boot)
        elif compare == "time":
            result = compare_time(model_a, loader, layers, device=dev, progress=advance, n_boot=n_boot)
        else:
            raise SuiteError(f"comparison {compare!r} is run with its own options (see `suite cka --help`)")
    label_a = Path(model).stem
    label_b = Path(model2).stem if compare == "models" else label_a
    stem = name or f"cka-{compare}-{label_a}" + (f"-vs-{label_b}" if compare == "models" else "")
    path = result.save(Path(out) / f"{stem}.h5", config)
    return CKARun(result, path, label_a, label_b)
