"""`suite cka` as a library call: build the loaders, run one comparison, save it.

Each comparison itself lives in suite.cka.compare (clean vs adversarial in suite.cka.clean_adv).

Under torchrun (`torchrun --nproc_per_node N -m suite cka ...`) every process loads the
models and takes a contiguous block of whole batches (`data.loaders.shard_loader`); the
HSIC sums are added over the processes, so the result is that of one process over all the
batches. Rank 0 writes the result file and shows progress; the others write nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from suite import distributed
from suite.checkpoint import Checkpoint, load_model
from suite.cka.compare import Options, compare_layers, compare_models, compare_time, relabel
from suite.cka.settings import CKAConfig, CKAInputs
from suite.data.loaders import eval_loader, shard_loader, subset_indices
from suite.data.paired import event_spec_for, load_paired, paired_loaders
from suite.device import select_device
from suite.errors import SuiteError
from suite.files import check_target, ensure_out_dir
from suite.models.digest import weights_digest
from suite.progress import progress_bar
from suite.results.cka import CKAResult
from suite.values import check_file_name
from suite.where import Where


@dataclass
class CKARun:
    """What a CKA run produced: the result, where it was saved, and which models it compared."""

    result: CKAResult
    path: Path
    label_a: str
    label_b: str


def run_comparison(config: CKAConfig, inputs: CKAInputs, where: Where, name: str | None = None) -> list[CKARun]:
    """`suite cka`: check the inputs against the comparison, then run it into WHERE.out. Clean
    adv gives one run per eps of the store (`run_clean_adv`), every other comparison one run
    (`run_cka`)."""
    inputs.check(config.compare)
    if config.compare == "clean-adv":
        return run_clean_adv(config, inputs, where, name)
    return [run_cka(config, inputs, where, name)]


def _static_event_loaders(ckpt_a: Checkpoint, ckpt_b: Checkpoint | None, where: Where,
                          config: CKAConfig) -> tuple[DataLoader, DataLoader, dict[str, Any]]:
    """Aligned loaders of the same samples for static-vs-event CKA (suite.data.paired): model a
    sees its static images; model b the paired event frames of its own event data, or without
    model b, model a sees the event-count images of its images' recordings too."""
    static = ckpt_a.data_spec
    event = event_spec_for(static, ckpt_b.data_spec if ckpt_b is not None else None)
    paired = load_paired(static, event, where.data_root, config.split)
    chosen = subset_indices(len(paired), config.samples, config.seed)
    as_image = ckpt_a.model_config.in_channels if ckpt_b is None else None
    loader, loader_b = paired_loaders(paired, chosen, config.batch_size, as_image)
    info = {"data_spec": static.to_dict(), "event_input": "frames" if ckpt_b else "event-count image"}
    return loader, shard_loader(loader_b), info


def _compare(config: CKAConfig, model_a, model_b, loader, loader_b, stream: Options) -> CKAResult:
    """The comparison `config.compare` of loaded models over ready loaders."""
    layers = config.layer_spec
    if config.compare == "time":
        return compare_time(model_a, loader, layers, stream)
    if config.compare == "layers":
        return compare_layers(model_a, loader, layers, config.time, stream)
    result = compare_models(model_a, model_b, loader, layers, layers, config.time, loader_b, stream)
    return relabel(result, config.compare)


def _check_targets(*paths: Path) -> None:
    """The result files and their figure, refused before the work when a folder stands there."""
    for path in paths:
        check_target(path)


def _check_same_data(a, b, inputs: CKAInputs) -> None:
    """Both models of a comparison read the same data (a model file and a checkpoint may not)."""
    keys = ("name", "size", "channels", "timesteps", "frames")
    da, db = a.to_dict(), b.to_dict()
    diffs = [f"{k} {da[k]} vs {db[k]}" for k in keys if da[k] != db[k]]
    if diffs:
        raise SuiteError(f"{inputs.model} and {inputs.model2} read different data ({', '.join(diffs)}); "
                         f"compare models on the same inputs (--compare static event pairs static and event data)")


def run_cka(config: CKAConfig, inputs: CKAInputs, where: Where, name: str | None = None) -> CKARun:
    """Run `models`, `layers`, `time` or `static-event` CKA for checkpoints; save the HDF5 result
    to WHERE.out/NAME.h5 (NAME from the models by default).

    static-event: `model` sees the static images of its dataset, `model2` the paired event
    frames of its dataset (digits <-> digits-dvs by source index, caltech101 <-> ncaltech101 by
    file name); both see the same samples. Without `model2`, `model` sees both the static
    images and the event-count images of their recordings (suite.data.paired)."""
    inputs.check(config.compare)
    if config.compare == "clean-adv":
        raise SuiteError("clean-adv CKA runs through run_clean_adv")
    check_file_name(name)
    ensure_out_dir(where.out)
    dev = select_device(where.device)
    two = inputs.model2 is not None
    label_a = Path(inputs.model).stem
    label_b = Path(inputs.model2).stem if two else label_a
    stem = name or f"cka-{config.compare}-{label_a}" + (f"-vs-{label_b}" if two else "")
    _check_targets(where.out / f"{stem}.h5", where.out / f"{stem}.png")  # suite.report.show draws NAME.png
    with distributed.session(dev):
        model_a, ckpt_a = load_model(inputs.model, dev)
        model_b, ckpt_b = load_model(inputs.model2, dev) if two else (model_a, ckpt_a)
        stored = {**config.to_dict(), "model": str(inputs.model), "model_config": ckpt_a.model_config.to_dict(),
                  "model_digest": weights_digest(model_a)}
        if two:
            stored.update(model2=str(inputs.model2), model2_config=ckpt_b.model_config.to_dict(),
                          model2_digest=weights_digest(model_b))
        loader_b = None
        if config.compare == "static-event":
            loader, loader_b, info = _static_event_loaders(ckpt_a, ckpt_b if two else None, where, config)
            stored.update(info)
        else:
            spec = ckpt_a.data_spec_for(inputs.dataset)
            if two:
                _check_same_data(spec, ckpt_b.data_spec_for(inputs.dataset), inputs)
            loader = eval_loader(spec, where.data_root, config.split, config.samples, config.batch_size,
                                 config.seed, pin_memory=dev.type == "cuda")
            stored.update(data_spec=spec.to_dict())
        loader = shard_loader(loader)
        stored["processes"] = distributed.world_size()
        with progress_bar(where.show_progress and distributed.is_main()) as bar:
            task = bar.add_task(f"cka {config.compare}", total=len(loader), info="")
            result = _compare(config, model_a, model_b, loader, loader_b,
                              Options(dev, lambda n: bar.update(task, advance=n), config.bootstrap, config.measures))
        path = distributed.broadcast_from_main(lambda: result.save(where.out / f"{stem}.h5", stored,
                                                                   device=str(dev)))
    return CKARun(result, path, label_a, label_b)


def run_clean_adv(config: CKAConfig, inputs: CKAInputs, where: Where, name: str | None = None) -> list[CKARun]:
    """Clean-vs-adversarial CKA for every eps of the attack store `inputs.attack`; one result
    file per eps in WHERE.out, named NAME-METHOD-epsEPS.

    The model is the attacked one (the store's checkpoint) unless `inputs.model` is given; a
    model other than the attacked one needs `inputs.other_model` (e.g. the ANN twin's view of
    examples crafted on the SNN). Its data must match the store's either way. The samples are
    the store's (`config.samples` and `config.seed` do not apply).
    """
    from suite.cka.clean_adv import choose_method, clean_vs_adv
    from suite.results.attacks import budget_stem, check_data, check_model, check_weights, read_store, rebuild_clean

    inputs.check("clean-adv")
    check_file_name(name)
    store = read_store(inputs.attack)
    model = Path(inputs.model) if inputs.model is not None else Path(store.config.get("checkpoint", ""))
    method = choose_method(store, inputs.method)
    label = model.stem
    base = name or f"cka-clean-adv-{Path(inputs.attack).stem}" + (f"-on-{label}" if inputs.other_model else "")
    paths = {e.eps: where.out / f"{base}-{method}-{budget_stem(e.eps, store.threat)}.h5"
             for e in store.for_method(method)}
    _check_targets(*paths.values(), where.out / f"{base}-{method}.png")  # suite.report.show draws one figure
    ensure_out_dir(where.out)
    dev = select_device(where.device)
    with distributed.session(dev):
        net, ckpt = load_model(model, dev)
        digest = weights_digest(net)
        if not inputs.other_model:
            check_model(store, ckpt.model_config)
            check_weights(store, digest, str(model))
        check_data(store, ckpt.data_spec)
        clean = store.clean if store.clean is not None else rebuild_clean(store, where.data_root)
        n_batches = len(distributed.shard(range(0, store.n_samples, config.batch_size))) * len(paths)
        with progress_bar(where.show_progress and distributed.is_main()) as bar:
            task = bar.add_task("cka clean adv", total=n_batches, info="")
            stream = Options(dev, lambda n: bar.update(task, advance=n), config.bootstrap, config.measures)
            results = clean_vs_adv(net, store, method, clean, layers=config.layer_spec, time=config.time,
                                   batch_size=config.batch_size, stream=stream)
        own = {k: v for k, v in config.to_dict().items() if k not in ("samples", "seed", "split")}
        stored = {**own, "compare": "clean-adv", "attack": str(inputs.attack), "model": str(model),
                  "model_config": ckpt.model_config.to_dict(), "model_digest": digest,
                  "processes": distributed.world_size()}
        runs = []
        for eps, result in results.items():
            path = distributed.broadcast_from_main(lambda: result.save(paths[eps], stored, device=str(dev)))
            runs.append(CKARun(result, path, label, label))
    return runs
