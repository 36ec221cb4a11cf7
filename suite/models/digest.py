"""The digest of a model's weights: SHA-256 over the names, shapes and values of its state
(parameters and buffers). Two checkpoints of one config trained apart (another seed, another
run) differ in it, so a store or result can say which network it was made on, not only which
architecture."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def weights_digest(*models: nn.Module | None) -> str:
    """SHA-256 (hex) of the models' `state_dict()`s in order; None entries are skipped."""
    h = hashlib.sha256()
    for model in models:
        if model is None:
            continue
        for name, t in model.state_dict().items():
            h.update(name.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
