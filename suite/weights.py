"""Reading a weights file without running code: `torch.load(weights_only=True)`, every failure one
SuiteError naming the file. Checkpoints and model files' weights are read through it."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from suite.errors import SuiteError

UNREADABLE = "corrupt, truncated, or not written by torch.save"

# What unpickling errors say when a file asks for Python objects beyond tensors and plain
# containers: building those is how a pickle runs code, so weights-only loading refuses them.
_OBJECT_REFUSED = re.compile(r"GLOBAL|call reduce|new object|Can only build|persistent_load")


def read_weights_only(p: Path, what: str = "suite checkpoint") -> Any:
    """torch.load with weights_only=True (never runs code from the file), errors as SuiteError
    naming the file as a `what`."""
    try:
        with warnings.catch_warnings():  # torch's remarks on a foreign pickle; the outcome is reported below
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _OBJECT_REFUSED.search(str(exc)):
            kind = "checkpoint" if what == "suite checkpoint" else what
            raise SuiteError(f"{p} is not a plain-weights {kind} (it holds pickled Python objects, "
                             "which could run code); not loaded") from None
        raise SuiteError(f"{p} is not a readable {what} ({UNREADABLE})") from None
    except Exception:  # arbitrary bytes fail inside torch.load in many ways (KeyError, struct.error, ...)
        raise SuiteError(f"{p} is not a readable {what} ({UNREADABLE})") from None
