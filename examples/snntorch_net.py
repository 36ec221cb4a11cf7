"""A convolutional SNN written the snntorch tutorials' way, for the suite's "Your own model"
walk-through: the model loops over its time steps in `forward`, each `snn.Leaky` neuron called
once per step with its membrane passed along, and returns the output layer's spikes and
membrane potentials over time (examples/snntorch_net.toml reads the membranes as logits:
output_index = 1). Run this file to train it on the embedded digits and write its weights:

    python examples/snntorch_net.py [--epochs 6] [--out runs]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


def build(num_steps: int = 4, beta: float = 0.6, channels: int = 8, num_classes: int = 10) -> nn.Module:
    """The network (random weights): conv -> LIF -> conv -> LIF -> linear -> LIF, over num_steps."""
    import snntorch as snn
    from snntorch import surrogate

    spike_grad = surrogate.atan()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.num_steps = num_steps
            self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
            self.lif1 = snn.Leaky(beta=beta, spike_grad=spike_grad)
            self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
            self.lif2 = snn.Leaky(beta=beta, spike_grad=spike_grad)
            self.fc = nn.Linear(2 * channels * 4 * 4, num_classes)
            self.lif3 = snn.Leaky(beta=beta, spike_grad=spike_grad)

        def forward(self, x):  # x: [B, 1, 16, 16], the same image at every step
            mem1, mem2, mem3 = self.lif1.reset_mem(), self.lif2.reset_mem(), self.lif3.reset_mem()
            spk_rec, mem_rec = [], []
            for _ in range(self.num_steps):
                spk1, mem1 = self.lif1(F.max_pool2d(self.conv1(x), 2), mem1)
                spk2, mem2 = self.lif2(F.max_pool2d(self.conv2(spk1), 2), mem2)
                spk3, mem3 = self.lif3(self.fc(spk2.flatten(1)), mem3)
                spk_rec.append(spk3)
                mem_rec.append(mem3)
            return torch.stack(spk_rec), torch.stack(mem_rec)  # [T, B, classes] each

    return Net()


def train(epochs: int, out: Path, size: int = 16, seed: int = 0) -> Path:
    """A few epochs on digits (the snntorch tutorials' loss: cross-entropy of the membrane at every
    step); weights to OUT/snntorch_digits.pt."""
    from torch.utils.data import DataLoader

    from suite.data import DataSpec, load_dataset

    torch.manual_seed(seed)
    spec = DataSpec("digits", size=size)
    train_set, test_set = (load_dataset(spec, "datasets", split) for split in ("train", "test"))
    net = build()
    optimiser = torch.optim.Adam(net.parameters(), lr=5e-3)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for x, y in DataLoader(train_set, batch_size=64, shuffle=True):
            _, mem = net((x - 0.5) / 0.5)
            loss = sum(F.cross_entropy(m, y) for m in mem) / len(mem)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            correct = sum(int((net((x - 0.5) / 0.5)[1].mean(0).argmax(1) == y).sum())
                          for x, y in DataLoader(test_set, batch_size=256))
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {correct / len(test_set):.1%} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "snntorch_digits.pt"
    torch.save(net.state_dict(), path)
    print(f"weights: {path}")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("runs"))
    args = parser.parse_args()
    train(args.epochs, args.out)
