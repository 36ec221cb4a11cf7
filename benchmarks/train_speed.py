"""Training-step time and saved-for-backward memory: suite SNN vs plain snntorch vs ANN x T.

One training step = forward, cross-entropy on the time-averaged logits, backward, SGD step.
Three competitors run in ONE process, interleaved repeat by repeat (the machine is shared,
so only side-by-side medians are meaningful):

  suite SNN       `build_model(ModelConfig(arch="resnet20", kind="snn", ...))`: every conv / BN
                  runs once on the merged [T*B, ...] batch, LIF layers loop over T only, in
                  the fused C kernel (suite/models/lif_kernel.c).
  suite SNN, PyTorch-ops LIF   the same model with the kernel switched off: the LIF as
                  element-wise PyTorch ops (the path CUDA and machines without a C compiler take).
  snntorch-style  the same pre-activation ResNet-20 (same conv / BN layers and topology) written
                  the plain snntorch way: a loop over T, each step runs the whole network on
                  [B, ...] with `snntorch.Leaky` (init_hidden=False, explicit membrane states,
                  reset_mechanism="zero", beta=0.5, threshold=1, atan surrogate); BN per step on [B].
  ANN x T         the ANN twin's step time on [B, ...] times T: the compute floor on CPU, where
                  convolutions dominate and an SNN does T times the ANN's convolution work.

Saved memory is the bytes of the tensors autograd keeps for backward during one forward
(`torch.autograd.graph.saved_tensors_hooks`), each unique storage counted once (parameters
included: the same for every competitor). The ANN's is measured at batch B and scaled by T.

Goals: suite SNN no slower than snntorch-style, within 1.15x of ANN x T, and no more saved
memory than snntorch-style.

Unless --system-malloc is given, glibc is told to keep freed memory (benchmarks/allocator.py),
so the steps time compute rather than page faults, which moved the ratios by up to 0.1
between runs.

    .venv/bin/python benchmarks/train_speed.py [--repeats 10] [--threads 1] [--batch 32] [--timesteps 4]
                                               [--system-malloc]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import surrogate
from torch import nn

from allocator import keep_freed_memory  # benchmarks/allocator.py (the script's folder is on sys.path)
from suite.models import ModelConfig, ModelSpec, build_model, lif_kernel, mean_logits
from suite.models.archs import DEPTHS
from suite.models.twin import Normalize

# ---------------------------------------------------------------------------------------------
# The same pre-activation ResNet-20, plain snntorch style: loop over T outside the network.
# Module names match the suite model, so `load_state_dict(suite.state_dict())` copies weights.


def _leaky(beta: float, threshold: float) -> snn.Leaky:
    return snn.Leaky(beta=beta, threshold=threshold, spike_grad=surrogate.atan(alpha=2.0),
                     init_hidden=False, reset_mechanism="zero")


class PlainBlock(nn.Module):
    """bn1-lif1-conv1-bn2-lif2-conv2 (+ shortcut) on one time step [B, ...]."""

    def __init__(self, cin: int, planes: int, stride: int, beta: float, threshold: float):
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(cin), _leaky(beta, threshold)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(planes), _leaky(beta, threshold)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(cin, planes, 1, stride, bias=False)
                         if stride != 1 or cin != planes else None)

    def forward(self, x, mem1, mem2):
        out, mem1 = self.act1(self.bn1(x), mem1)
        skip = self.shortcut(out) if self.shortcut is not None else x
        out, mem2 = self.act2(self.bn2(self.conv1(out)), mem2)
        return self.conv2(out) + skip, mem1, mem2


class PlainSnnTorchResNet(nn.Module):
    """Pre-activation ResNet (basic blocks) with snntorch.Leaky; returns logits [T, B, classes]."""

    def __init__(self, cfg: ModelConfig, depth: int = 20):
        super().__init__()
        beta = 1.0 - 1.0 / cfg.spec.tau
        _, n = DEPTHS[depth]
        self.timesteps = cfg.spec.timesteps
        self.norm = Normalize(cfg.mean, cfg.std, cfg.in_channels)
        widths = [max(1, round(c * cfg.spec.width)) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(cfg.in_channels, widths[0], 3, 1, 1, bias=False)
        cin = widths[0]
        for i, planes in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(PlainBlock(cin, planes, 2 if (i > 0 and j == 0) else 1, beta, cfg.spec.threshold))
                cin = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.bn, self.act = nn.BatchNorm2d(cin), _leaky(beta, cfg.spec.threshold)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] static image
        blocks = [b for layer in (self.layer1, self.layer2, self.layer3) for b in layer]
        mems = [(b.act1.init_leaky(), b.act2.init_leaky()) for b in blocks]
        mem = self.act.init_leaky()
        x = self.norm(x)
        logits = []
        for _ in range(self.timesteps):  # direct encoding: the same image every step
            out = self.conv1(x)
            for k, b in enumerate(blocks):
                out, m1, m2 = b(out, *mems[k])
                mems[k] = (m1, m2)
            spk, mem = self.act(self.bn(out), mem)
            logits.append(self.fc(self.pool(spk).flatten(1)))
        return torch.stack(logits)  # [T, B, classes]


# ---------------------------------------------------------------------------------------------


def saved_mb(forward) -> float:
    """MB of tensors saved for backward by one forward, each unique storage counted once."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        storages[st.data_ptr()] = max(storages.get(st.data_ptr(), 0), st.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = forward()
    del loss  # the graph (and the saved tensors) go with it
    return sum(storages.values()) / 2**20


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10, help="timed steps per competitor (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per competitor first")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--timesteps", type=int, default=4)
    ap.add_argument("--system-malloc", action="store_true",
                    help="leave glibc's allocator as is (default: keep freed memory)")
    args = ap.parse_args(argv)
    kept = False if args.system_malloc else keep_freed_memory()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    T, B = args.timesteps, args.batch
    cfg = ModelConfig(spec=ModelSpec(arch="resnet20", kind="snn", timesteps=T), in_channels=3, input_size=32)
    suite_snn = build_model(cfg)
    plain = PlainSnnTorchResNet(cfg)
    plain.load_state_dict(suite_snn.state_dict(), strict=False)
    ann = build_model(dataclasses.replace(cfg, spec=dataclasses.replace(cfg.spec, kind="ann")))
    x = torch.rand(B, 3, 32, 32)
    y = torch.randint(0, 10, (B,))

    # Same weights, eval mode (BN on running statistics, so per-step BN == merged BN): the
    # two SNNs must compute the same function, or the comparison is meaningless.
    suite_snn.eval(), plain.eval()
    with torch.no_grad():
        diff = (suite_snn(x) - plain(x)).abs().max().item()
    suite_snn.train(), plain.train()

    if lif_kernel.library() is None:
        raise SystemExit("the fused LIF kernel did not build: nothing to compare")

    def suite_loss():
        return F.cross_entropy(mean_logits(suite_snn(x), suite_snn), y)

    def suite_loss_torch_ops():
        with lif_kernel.switched_off():  # backward follows forward's choice
            return suite_loss()

    forwards = {
        "suite SNN": (suite_snn, suite_loss),
        "suite, torch-ops LIF": (suite_snn, suite_loss_torch_ops),
        "snntorch-style": (plain, lambda: F.cross_entropy(plain(x).mean(0), y)),
        "ANN twin": (ann, lambda: F.cross_entropy(ann(x), y)),
    }
    steps = {}
    for name, (model, fwd) in forwards.items():
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def step(fwd=fwd, opt=opt):
            opt.zero_grad(set_to_none=True)
            fwd().backward()
            opt.step()
        steps[name] = step

    mem = {name: saved_mb(fwd) for name, (_, fwd) in forwards.items()}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(args.repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:  # rotate the order: no fixed neighbour
            t0 = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t0)
    ms = {name: 1e3 * statistics.median(ts) for name, ts in times.items()}

    s, p, a = ms["suite SNN"], ms["snntorch-style"], ms["ANN twin"] * T
    o = ms["suite, torch-ops LIF"]
    ms_s = {"suite SNN": s, "suite, torch-ops LIF": o, "snntorch-style": p, "ANN twin x T": a}
    mb = {"suite SNN": mem["suite SNN"], "suite, torch-ops LIF": mem["suite, torch-ops LIF"],
          "snntorch-style": mem["snntorch-style"], "ANN twin x T": mem["ANN twin"] * T}
    print(f"ResNet-20, T={T}, batch {B}, 32x32x3, {args.threads} thread(s), "
          f"median of {args.repeats} interleaved steps (after {args.warmup} warm-up)")
    print("allocator: " + ("glibc keeps freed memory (no page faults in timed steps)" if kept
                           else "system default (page faults land in the timings)"))
    print(f"eval-mode check, same weights: max |logit diff| suite vs snntorch-style = {diff:.2e}")
    print()
    print(f"{'':22s} {'ms/step':>10s} {'saved MB':>10s}")
    for name in ms_s:
        print(f"{name:22s} {ms_s[name]:10.1f} {mb[name]:10.1f}")
    print(f"  (ANN twin: {ms['ANN twin']:.1f} ms/step, {mem['ANN twin']:.1f} MB at batch {B}; x T={T})")
    print()
    goals = [
        (f"suite / snntorch-style  = {s / p:5.3f}", "<= 1.00", s <= p),
        (f"suite / (ANN x T)       = {s / a:5.3f}", "<= 1.15", s <= 1.15 * a),
        (f"saved MB suite / snntorch = {mb['suite SNN'] / mb['snntorch-style']:5.3f}", "<= 1.00",
         mb["suite SNN"] <= mb["snntorch-style"]),
    ]
    for text, goal, ok in goals:
        print(f"{text:36s} goal {goal}  {'met' if ok else 'NOT MET'}")
    print(f"without the kernel: torch-ops LIF / (ANN x T) = {o / a:5.3f}, kernel / torch-ops = {s / o:5.3f}")
    return {"ms": ms_s, "saved_mb": mb, "ratios": {"suite/snntorch": s / p, "suite/annxT": s / a,
                                                   "torch-ops/annxT": o / a},
            "eval_diff": diff}


if __name__ == "__main__":
    main()
