"""Model files for tests: the twins' spikingjelly and snntorch references (foreign_twins.py) with the
weights of a tiny suite checkpoint, written as TOML the way a user writes one."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from suite.checkpoint import load_checkpoint
from tests.support import foreign_twins


def toml_value(value) -> str:
    """A TOML literal of a JSON-like value (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_model_file(path: Path, keys: dict) -> Path:
    path.write_text("[model]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items()))
    return path


def reference_model_file(folder: Path, checkpoint: Path, framework: str, **extra) -> Path:
    """folder/<framework>.toml naming the framework's reference of `checkpoint`'s twin, with its
    weights saved beside it (the network's own state dict, as a user's training script saves it)."""
    ckpt = load_checkpoint(checkpoint)
    args = ckpt.model_config.to_dict()
    factory = {"spikingjelly": "sj_resnet20", "snntorch": "snntorch_resnet20"}[framework]
    net = getattr(foreign_twins, factory)(**args)
    net.load_state_dict(ckpt.state["model"], strict=False)
    torch.save(net.state_dict(), folder / f"{framework}.pt")
    spec = ckpt.data_spec
    keys = {"factory": f"tests.support.foreign_twins:{factory}", "args": args, "weights": f"{framework}.pt",
            "dataset": spec.name, "size": spec.size, "timesteps": ckpt.model_config.spec.timesteps,
            **({"input": "B"} if framework == "snntorch" else {}), **extra}
    return write_model_file(folder / f"{framework}.toml", keys)
