"""The cost of the model adapters (issue 29), measured side by side in one process:

1. Overhead: the same spikingjelly network (the suite's ResNet-20 SNN rebuilt with spikingjelly,
   tests/support/foreign_twins.py; multi-step, torch backend) run bare and through the adapter.
   - PGD-10, bare: torchattacks.PGD on a minimal wrapper (functional.reset_net, static images
     repeated over T, time-averaged logits; neurons in training mode, BatchNorm in eval, weights
     frozen: what a careful hand-written attack does); adapted: `craft(attack_model(adapted),
     "pgd", ...)`, the suite's path.
   - CKA of its neuron outputs over minibatches (firing rates), bare: forward hooks on the network,
     outputs [T, B, ...] averaged over T, `MinibatchCKA.update`; adapted: `compare_models`.
   Goal: adapted / bare <= 1.1 for both.
2. The suite's native SNN against that spikingjelly network, the same weights:
   - a training step (forward, cross-entropy of the time-averaged logits, backward, SGD step),
     both in training mode;
   - a PGD-10 attack, both through the suite's attack path.

Every timing is interleaved repeat by repeat with its peer; medians are printed.

    .venv/bin/python benchmarks/adapter_speed.py [--repeats 5] [--threads 2] [--batch 32] [--width 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from suite.attacks import Budget, attack_model, craft
from suite.attacks.settings import AttackConfig
from suite.cka import compare_models
from suite.cka.core import MinibatchCKA
from suite.models import ModelConfig, build_model, mean_logits
from suite.models.adapter import adapt
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/
from tests.support.foreign_twins import sj_resnet20  # noqa: E402  (the twin rebuilt with spikingjelly)


class Bare(nn.Module):
    """A hand-written attack wrapper around a multi-step spikingjelly network."""

    def __init__(self, net: nn.Module, timesteps: int):
        super().__init__()
        self.net, self.T = net, timesteps

    def train(self, mode: bool = True) -> "Bare":
        """torchattacks calls eval() on what it attacks: the neurons stay in training mode, as
        spikingjelly 0.0.0.0.14 fires without a graph otherwise."""
        from spikingjelly.activation_based.neuron import BaseNode

        super().train(mode)
        for m in self.modules():
            if isinstance(m, BaseNode):
                m.train()
        return self

    def forward(self, x):
        from spikingjelly.activation_based import functional

        functional.reset_net(self.net)
        return self.net(x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)).mean(0)


def bare_attacker(net: nn.Module, T: int) -> Bare:
    import copy

    twin = copy.deepcopy(net)
    for p in twin.parameters():
        p.requires_grad_(False)
    return Bare(twin, T).eval()


def bare_cka(net: nn.Module, names: list[str], batches, T: int) -> torch.Tensor:
    from spikingjelly.activation_based import functional

    modules = dict(net.named_modules())
    acc = MinibatchCKA(len(names), len(names))
    for x in batches:
        outs: dict[str, torch.Tensor] = {}
        hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: outs.__setitem__(n, o)) for n in names]
        with torch.no_grad():
            functional.reset_net(net)
            net(x.unsqueeze(0).repeat(T, 1, 1, 1, 1))
        for h in hooks:
            h.remove()
        feats = [outs[n].mean(0).flatten(1) for n in names]
        acc.update(feats)
    return acc.compute()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--timesteps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    T = args.timesteps
    config = dict(arch="resnet20", kind="snn", width=args.width, timesteps=T, tau=2.0, in_channels=3,
                  input_size=32, num_classes=10)
    torch.manual_seed(0)
    twin = build_model(ModelConfig.from_dict(config)).eval()
    sj = sj_resnet20(**config)
    sj.load_state_dict(twin.state_dict())
    sj.eval()
    adapted = adapt(sj, num_classes=10, in_channels=3, input_size=32, timesteps=T)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(args.batch, 3, 32, 32, generator=g), torch.randint(0, 10, (args.batch,), generator=g)
    batches = [torch.rand(args.batch, 3, 32, 32, generator=g) for _ in range(4)]
    budget = Budget.of(AttackConfig(methods=("pgd",), steps=10))
    names = [v.name for v in adapted.neuron_views()]
    bare_pgd = bare_attacker(sj, T)
    suite_pgd, twin_pgd = attack_model(adapted), attack_model(twin)

    def pgd_bare():
        torch.manual_seed(0)
        torchattacks.PGD(bare_pgd, eps=8 / 255, alpha=2 / 255, steps=10, random_start=True)(x, y)

    def pgd_adapted():
        craft(suite_pgd, "pgd", x, y, 8 / 255, budget, seed=0)

    def pgd_native():
        craft(twin_pgd, "pgd", x, y, 8 / 255, budget, seed=0)

    def cka_bare():
        bare_cka(sj, names, batches, T)

    def cka_adapted():
        compare_models(adapted, adapted, batches, names, names)

    train_twin, train_sj = build_model(ModelConfig.from_dict(config)), sj_resnet20(**config)
    train_sj.load_state_dict(train_twin.state_dict())
    opt_twin = torch.optim.SGD(train_twin.parameters(), lr=0.01)
    opt_sj = torch.optim.SGD(train_sj.parameters(), lr=0.01)

    def step_native():
        train_twin.train()
        loss = F.cross_entropy(mean_logits(train_twin(x), train_twin), y)
        opt_twin.zero_grad()
        loss.backward()
        opt_twin.step()

    def step_sj():
        from spikingjelly.activation_based import functional

        train_sj.train()
        functional.reset_net(train_sj)
        loss = F.cross_entropy(train_sj(x.unsqueeze(0).repeat(T, 1, 1, 1, 1)).mean(0), y)
        opt_sj.zero_grad()
        loss.backward()
        opt_sj.step()

    # the CKA results agree (the adapter reads the same outputs)
    ref, got = bare_cka(sj, names, batches, T), compare_models(adapted, adapted, batches, names, names).matrix
    assert torch.allclose(ref, got, atol=1e-6, equal_nan=True), float((ref - got).abs().nan_to_num().max())
    fns = {"pgd10 bare": pgd_bare, "pgd10 adapted": pgd_adapted, "cka bare": cka_bare, "cka adapted": cka_adapted,
           "pgd10 native": pgd_native, "train step native": step_native, "train step spikingjelly": step_sj}
    for fn in fns.values():  # warm up (the LIF kernel's build, allocator)
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, fn in fns.items():
            times[k].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"ResNet-20 SNN width {args.width}, T={T}, batch {args.batch} of 3x32x32, {args.threads} threads, "
          f"median of {args.repeats}")
    for k, v in med.items():
        print(f"  {k:24} {v:8.3f} s")
    print(f"adapter overhead: PGD-10 {med['pgd10 adapted'] / med['pgd10 bare']:.2f}x, "
          f"CKA {med['cka adapted'] / med['cka bare']:.2f}x (goal <= 1.1)")
    print(f"native / spikingjelly: training step {med['train step native'] / med['train step spikingjelly']:.2f}, "
          f"PGD-10 {med['pgd10 native'] / med['pgd10 adapted']:.2f}")


if __name__ == "__main__":
    main()
