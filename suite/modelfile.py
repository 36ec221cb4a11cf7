"""Model files: a TOML file that names a network built elsewhere for the command line, read into
a suite model (suite.models.adapter) through the same door as a checkpoint (suite.checkpoint.
load_model). The format (docs/model-files.md has every key):

    [model]
    factory = "sew.py:build"        # package.module:function, or file.py:function beside this file
    args = { width = 16 }           # keyword arguments of the factory
    weights = "../runs/sew.pt"      # beside this file: a state dict, or a dict holding one under
                                    # state_dict, model, net, ... (a DDP "module." prefix is stripped)
    dataset = "digits-dvs"          # a name of `suite data list`
    timesteps = 4                   # an SNN's T (event data: the frame bins)
    input = "TB"                    # TB [T, B, C, H, W], BT [B, T, C, H, W], B [B, C, H, W]
    output = "TB"                   # TB, BT or B (already over time); output_index for a tuple
    size = 32                       # input side (default: the dataset's)
    frames = "time-clip"            # event data: time-clip, time-binary, count-clip, count-binary
    mean = [0.5]                    # normalisation the model expects, applied inside
    std = [0.5]
    kind = "snn"                    # default: snn when the network has spiking neurons
    neurons = ["MyLIF"]             # classes of your own spiking neurons
    blocks = ["layer*.?"]           # module names or patterns of its blocks (@blocks)

Weights load with `weights_only=True`: a file that holds pickled objects is refused, never run.
The factory's code runs: it is the user's own, named by them. Every failure is one SuiteError
naming the file and what is wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from suite.data.registry import DataSpec, get_dataset_info
from suite.errors import SuiteError
from suite.models.adapter import ExternalConfig, ExternalModel, framework_words
from suite.models.digest import weights_digest
from suite.weights import read_weights_only

KEYS = ("factory", "args", "weights", "dataset", "timesteps", "input", "output", "output_index", "size",
        "channels", "frames", "mean", "std", "kind", "neurons", "blocks")
REQUIRED = ("factory", "weights", "dataset")
STATE_KEYS = ("state_dict", "model", "net", "model_state_dict", "state", "weights", "params")
SHOW_KEYS = 3  # a weights mismatch names this many keys of each kind, then counts the rest


@dataclass
class ModelFile:
    """A read model file, in the shape of a suite.checkpoint.Checkpoint where commands read one:
    `model_config` (to_dict, in_channels, ...), `data_spec`, `data_spec_for`, `path`."""

    path: Path
    model_config: ExternalConfig
    data_spec: DataSpec
    provenance: dict[str, Any] = field(default_factory=dict)

    def data_spec_for(self, dataset: str | None = None) -> DataSpec:
        """The model file's data; another dataset only when it is the same data."""
        if dataset is None or dataset == self.data_spec.name:
            return self.data_spec
        raise SuiteError(f"{self.path} reads {self.data_spec.name}; --dataset {dataset} is other data "
                         f"(give the model file that reads it)")


def is_model_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".toml"


def read_table(path: Path) -> dict[str, Any]:
    """The [model] table, its keys checked."""
    if not path.is_file():
        raise SuiteError(f"model file not found: {path}")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path} is not valid TOML: {exc}") from None
    table = doc.get("model")
    if not isinstance(table, dict):
        raise SuiteError(f"{path} has no [model] table")
    extra = [k for k in doc if k != "model"]
    unknown = [k for k in table if k not in KEYS] + extra
    if unknown:
        raise SuiteError(f"{path}: unknown key {unknown[0]!r} (the [model] table takes: {', '.join(KEYS)})")
    missing = [k for k in REQUIRED if k not in table]
    if missing:
        raise SuiteError(f"{path}: [model] needs {', '.join(missing)}")
    return table


def load_factory(spec: str, base: Path, where: Path):
    """The factory function named `package.module:function` or `file.py:function` (beside `base`)."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise SuiteError(f"{where}: factory = {spec!r}: write package.module:function or file.py:function")
    module_name, _, fn_name = spec.partition(":")
    file = (base / module_name).resolve() if module_name.endswith(".py") else None
    if file is not None and not file.is_file():
        raise SuiteError(f"{where}: factory file {file} not found")
    try:
        module = _import(module_name, file, base)
    except Exception as exc:
        raise SuiteError(f"{where}: factory module {module_name} does not import "
                         f"({type(exc).__name__}: {_first_line(exc)})") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise SuiteError(f"{where}: {module_name} has no callable {fn_name!r}" if fn is None else
                         f"{where}: {module_name}.{fn_name} is a {type(fn).__name__}, not a function")
    return fn


def _import(module_name: str, file: Path | None, base: Path):
    """A factory file, run as a module of its own (it may import its neighbours), or a
    package.module where Python looks, then beside the model file and in the working folder
    (as `python -m` would). A framework's deprecation notes at import are not shown."""
    folders = [str(file.parent)] if file is not None else [str(base.resolve()), str(Path.cwd())]
    if file is not None:
        sys.path.insert(0, folders[0])
    else:
        sys.path.extend(folders)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if file is None:
                return importlib.import_module(module_name)
            loader = importlib.util.spec_from_file_location(f"_suite_factory_{abs(hash(str(file)))}", file)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
            return module
    finally:
        for folder in folders:
            sys.path.remove(folder)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def read_weights(path: Path, where: Path) -> dict[str, torch.Tensor]:
    """A state dict from a weights file (weights_only), found under a common key, DDP prefix stripped."""
    if not path.is_file():
        raise SuiteError(f"{where}: weights file not found: {path}")
    payload = read_weights_only(path, "weights file")
    state = payload
    if isinstance(payload, dict) and not _is_state(payload):
        key = next((k for k in STATE_KEYS if isinstance(payload.get(k), dict) and _is_state(payload[k])), None)
        if key is None and isinstance(payload.get("state"), dict) and _is_state(payload["state"].get("model", {})):
            state = payload["state"]["model"]  # a suite checkpoint's weights
        elif key is None:
            raise SuiteError(f"{path} holds no state dict (a dict of tensors, alone or under one of "
                             f"{', '.join(STATE_KEYS)})")
        else:
            state = payload[key]
    if not isinstance(state, dict) or not _is_state(state):
        raise SuiteError(f"{path} holds no state dict (a dict of tensors)")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _is_state(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def load_weights(net: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """`state` into `net`, refusing weights of another architecture with the keys that differ."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                shown = ", ".join(keys[:SHOW_KEYS]) + (f" (+{len(keys) - SHOW_KEYS} more)" if len(keys) > SHOW_KEYS else "")
                parts.append(f"{len(keys)} {what} key(s): {shown}")
        raise SuiteError(f"{path}: weights of another architecture than the factory's: {'; '.join(parts)}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise SuiteError(f"{path}: weights of another architecture than the factory's: {k} is "
                             f"{list(v.shape)} in the file, {list(own[k].shape)} in the network")
    net.load_state_dict(state)


def _data_spec(table: dict[str, Any], where: Path) -> DataSpec:
    info = get_dataset_info(table["dataset"])
    event = info.kind == "event"
    if event and "channels" in table:
        raise SuiteError(f"{where}: channels applies to static images; event frames have 2 (polarities)")
    try:
        return DataSpec(table["dataset"], size=table.get("size"), channels=None if event else table.get("channels"),
                        timesteps=table.get("timesteps") if event else None, frames=table.get("frames"))
    except SuiteError as exc:
        raise SuiteError(f"{where}: {exc}") from None


def load_model_file(path: str | Path, device: torch.device | str = "cpu") -> tuple[ExternalModel, ModelFile]:
    """The model a model file names, in eval mode on `device`, with its weights; and the file as read."""
    path = Path(path)
    table = read_table(path)
    base = path.parent
    spec = _data_spec(table, path)
    info = get_dataset_info(spec.name)
    args = table.get("args", {})
    if not isinstance(args, dict):
        raise SuiteError(f"{path}: args must be a table of keyword arguments, got {args!r}")
    factory = load_factory(table["factory"], base, path)
    try:
        with warnings.catch_warnings():  # a framework's deprecation notes when the factory imports it
            warnings.simplefilter("ignore", FutureWarning)
            net = factory(**args)
    except Exception as exc:
        raise SuiteError(f"{path}: factory {table['factory']}(**args) failed: {type(exc).__name__}: "
                         f"{_first_line(exc)}") from None
    if not isinstance(net, nn.Module):
        raise SuiteError(f"{path}: factory {table['factory']} returned a {type(net).__name__}, not a torch nn.Module")
    weights = (base / str(table["weights"])).resolve()
    load_weights(net, read_weights(weights, path), weights)
    T = table.get("timesteps", spec.timesteps)
    source = {"model_file": str(path), "factory": table["factory"], "args": args, "weights": str(weights),
              "framework": framework_words(net, tuple(table.get("neurons", ())))}
    try:
        cfg = ExternalConfig(num_classes=info.num_classes, in_channels=2 if info.kind == "event" else spec.channels,
                             input_size=spec.size, kind=table.get("kind"), timesteps=T,
                             input=table.get("input", "TB" if T is not None else "B"),
                             output=table.get("output", "TB" if T is not None else "B"),
                             output_index=table.get("output_index", 0), mean=tuple(table.get("mean", ())),
                             std=tuple(table.get("std", ())), neurons=tuple(table.get("neurons", ())),
                             blocks=tuple(table.get("blocks", ())), source=source)
        if spec.timesteps is not None and T != spec.timesteps:
            raise SuiteError(f"timesteps = {T} but the event frames have {spec.timesteps} bins")
        model = ExternalModel(net.to(device), cfg)
    except SuiteError as exc:
        raise SuiteError(f"{path}: {exc}") from None
    model.cfg.source["digest"] = weights_digest(model)
    return model.eval(), ModelFile(path, model.cfg, spec)
