"""The two ways an experiment reads a model's layers: the suite's default and the protocol of the
paper's released code, run side by side for every finding.

    suite   the model's representation layers (stem, every block output, last activation,
            classifier; `TwinNet.representation_layers`) and, where a finding looks at the
            pattern inside the blocks, every conv and activation layer of every block
            (`@conv-lif`); an SNN layer's output averaged over time (its firing rate)
    snncka  the layer set of Li et al.'s SNNCKA code (Intelligent-Computing-Lab-Yale/SNNCKA,
            main_cka.py): every convolution, BatchNorm, activation and pooling output and every
            residual block's sum, in the order their forward passes finish
            (`TwinNet.snncka_layers`: 69 layers of a ResNet-20 here, 73 there), and an SNN
            layer's output with its time steps side by side, [B, T, C, H, W] -> [B, T*C*H*W],
            as its `outputs.flatten(1)` does (the time mean is commented out there)

A time-step comparison runs every step as its own entry under both; the protocols differ there
in the layers only. The released code compares the first 2048 test images in two batches of
1024; the suite's recipes keep their own samples and minibatches (the embedded digits test split
holds 450 images).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """Which layers a comparison hooks (`default` for a comparison of whole models, `fine` for the
    pattern inside the blocks; None: the model's own default) and how SNN outputs meet time."""

    name: str
    default: str | None
    fine: str
    time: str

    def layers(self, which: str) -> str | None:
        return self.fine if which == "fine" else self.default


PROTOCOLS = {
    "suite": Protocol("suite", None, "@conv-lif", "mean"),
    "snncka": Protocol("snncka", "@snncka", "@snncka", "concat"),
}
