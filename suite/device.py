"""Where computation runs and how it is seeded: the one device-selection function and the one
seeding function every command uses."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from suite.errors import SuiteError


def select_device(name: str = "auto") -> torch.device:
    """The one device-selection function: "auto" is CUDA when present, else CPU; "cpu" forces
    the CPU. Under torchrun (LOCAL_RANK set), "auto" and "cuda" mean this process's own GPU,
    cuda:LOCAL_RANK; naming one GPU there would put every process of the node on it."""
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SuiteError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SuiteError(f"device {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        if device.index is not None and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
            raise SuiteError(f"--device {name} under torchrun would put every process of this node on one "
                             "GPU; use --device cuda (each process takes cuda:LOCAL_RANK)")
        if device.index is None:
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


# cuBLAS needs a fixed workspace per stream for reproducible results on CUDA (two 4 MiB
# buffers is the smaller of NVIDIA's two documented settings); read when cuBLAS starts.
CUBLAS_DETERMINISTIC_WORKSPACE = ":4096:8"


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for data shuffling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC_WORKSPACE)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
