"""A small SEW-ResNet built with spikingjelly, for the suite's "Your own model" walk-through.

`build` is the factory examples/sew_resnet.toml names: spikingjelly's own SEW block
(`sew_resnet.BasicBlock`, ADD connections) in three stages of `width`, 2 `width`, 4 `width`
channels, multi-step ([T, B, 2, H, W] in, [T, B, classes] out), LIF neurons with the ATan
surrogate. Run this file to train it on digits-dvs and write its weights where the model file
expects them:

    python examples/sew_resnet.py [--epochs 8] [--out runs]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
from torch import nn


def build(width: int = 16, num_classes: int = 10, tau: float = 2.0, blocks: int = 1) -> nn.Module:
    """The network (random weights): stem conv, 3 stages of `blocks` SEW blocks, pool, classifier."""
    with warnings.catch_warnings():  # spikingjelly 0.0.0.0.14 applies torch.jit.script on import,
        warnings.simplefilter("ignore", FutureWarning)  # which recent torch marks deprecated
        from spikingjelly.activation_based import functional, layer, neuron, surrogate
        from spikingjelly.activation_based.model import sew_resnet

    lif = dict(tau=tau, decay_input=False, detach_reset=True, surrogate_function=surrogate.ATan())

    class SEWResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = layer.Conv2d(2, width, 3, 1, 1, bias=False)
            self.bn1 = layer.BatchNorm2d(width)
            self.sn1 = neuron.LIFNode(**lif)
            stages, cin = [], width
            for i, planes in enumerate((width, 2 * width, 4 * width)):
                stride = 1 if i == 0 else 2
                down = None if stride == 1 and cin == planes else nn.Sequential(
                    layer.Conv2d(cin, planes, 1, stride, bias=False), layer.BatchNorm2d(planes))
                stage = [sew_resnet.BasicBlock(cin, planes, stride, down, cnf="ADD", spiking_neuron=neuron.LIFNode,
                                               norm_layer=layer.BatchNorm2d, **lif)]
                stage += [sew_resnet.BasicBlock(planes, planes, cnf="ADD", spiking_neuron=neuron.LIFNode,
                                                norm_layer=layer.BatchNorm2d, **lif) for _ in range(blocks - 1)]
                stages.append(nn.Sequential(*stage))
                cin = planes
            self.layer1, self.layer2, self.layer3 = stages
            self.avgpool = layer.AdaptiveAvgPool2d((1, 1))
            self.flatten = layer.Flatten()
            self.fc = layer.Linear(cin, num_classes)

        def forward(self, x):  # [T, B, 2, H, W] -> [T, B, classes]
            x = self.sn1(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(self.flatten(self.avgpool(x)))

    net = SEWResNet()
    functional.set_step_mode(net, "m")
    return net


def train(epochs: int, out: Path, timesteps: int = 4, size: int = 16, seed: int = 0) -> Path:
    """A few epochs on digits-dvs through the suite's data and adapter; weights to OUT/sew_digits_dvs.pt."""
    from torch.utils.data import DataLoader

    from suite.data import DataSpec, load_dataset
    from suite.models import mean_logits
    from suite.models.adapter import adapt

    torch.manual_seed(seed)
    spec = DataSpec("digits-dvs", size=size, timesteps=timesteps)
    train_set, test_set = (load_dataset(spec, "datasets", split) for split in ("train", "test"))
    net = build()
    model = adapt(net, num_classes=10, in_channels=2, input_size=size, timesteps=timesteps)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for x, y in DataLoader(train_set, batch_size=64, shuffle=True):
            loss = nn.functional.cross_entropy(mean_logits(model(x), model), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((mean_logits(model(x), model).argmax(1) == y).sum())
                          for x, y in DataLoader(test_set, batch_size=256))
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {correct / len(test_set):.1%} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sew_digits_dvs.pt"
    torch.save(net.state_dict(), path)
    print(f"weights: {path}")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs"))
    args = parser.parse_args()
    train(args.epochs, args.out)
