"""Firing rates of an SNN's LIF layers, counted by forward hooks while the model runs.

The rate of a layer is the fraction of its outputs that are spikes, over every neuron, time
step and sample it has seen since the last `take()`. Counts stay on the model's device until
`take()` reads them, so counting adds no synchronisation to a training step.
"""

from __future__ import annotations

import torch
from torch import nn

from suite.models.neurons import LIF


class FiringRates:
    """Forward hooks on every LIF layer of `model` (none for an ANN); `take()` returns
    {layer name: firing rate} since the previous call and starts counting anew."""

    def __init__(self, model: nn.Module):
        self._spikes: dict[str, torch.Tensor] = {}
        self._seen: dict[str, int] = {}
        self._handles = [module.register_forward_hook(self._counter(name))
                         for name, module in model.named_modules() if isinstance(module, LIF)]

    def _counter(self, name: str):
        def hook(module, inputs, out):
            spikes = out.detach().sum(dtype=torch.float64)
            self._spikes[name] = self._spikes[name] + spikes if name in self._spikes else spikes
            self._seen[name] = self._seen.get(name, 0) + out.numel()
        return hook

    def take(self) -> dict[str, float]:
        rates = {name: float(total) / self._seen[name] for name, total in self._spikes.items()}
        self._spikes.clear()
        self._seen.clear()
        return rates

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
