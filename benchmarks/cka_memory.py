"""CKA memory and time with every convolution hooked: suite CKA vs the forward passes alone
and the Gram floor, on ResNet-20/56/110 ANNs at CIFAR size, CPU, each measured in a fresh
process.

Two seeded, untrained ResNet ANNs of the same depth (width 1, 3x32x32 inputs, 10 classes,
eval mode with default BatchNorm statistics) see the same seeded uniform [0, 1] random
inputs: --batches batches of --batch-size (default 1 x 256). Every nn.Conv2d of each model is
a CKA layer (ResNet-20: 21, ResNet-56: 57, ResNet-110: 111, counting the two 1x1 shortcut
projections). Random data is fine here: memory and time depend on shapes, not values.

Three passes are measured:

    forward  both models' forward passes under torch.no_grad, no hooks
    grams    the forward passes with a hook on every conv that mean-centres its output and
             forms the float32 Gram X Xᵀ; the time spent in those hooks is the Gram floor,
             the least any CKA that forms these Grams can add to the forward passes
    suite    suite.cka.compare_models(a, b, batches, convs, convs): Grams formed and
             U-centred in the hooks, HSIC of all layer pairs, float64 accumulation

and, for memory only, the path before issue 12:

    holding  `extract_features` holds every conv's output until the forward pass ends,
             then `MinibatchCKA.update` forms the Grams

Memory: forward, suite and holding each run in a fresh process (one warm-up pass on 16
samples, then one pass), and the process's peak resident set size (ru_maxrss) is that
pass's peak (glibc's default allocator); it includes the ~0.5 GB that importing torch maps.
Time: a fourth process runs forward, grams and suite in turn, --repeats rounds after a
warm-up, and keeps each one's best process CPU time (with one thread, CPU time is what a
busy machine disturbs least; interleaving keeps its load from landing on one pass only).
CKA overhead = suite - forward. Unless --system-malloc is given, the timing process tells
glibc to keep freed memory (`allocator.keep_freed_memory`): otherwise page faults that
depend on allocation history, not compute, move "suite - forward" by more than the floor. Targets (issue 12): suite peak
<= 1.3 x forward peak, overhead <= 1.25 x Gram floor.

    .venv/bin/python benchmarks/cka_memory.py                          # 20, 56, 110; minutes
    .venv/bin/python benchmarks/cka_memory.py --depths 20 --repeats 1 --no-holding
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from time import process_time

import torch
from torch import Tensor, nn

from allocator import keep_freed_memory  # benchmarks/allocator.py (the script's folder is on sys.path)
from suite.cka import compare_models, extract_features
from suite.cka.core import MinibatchCKA
from suite.models import ModelConfig, ModelSpec, build_model

ROOT = Path(__file__).resolve().parents[1]

MODES = ("forward", "suite", "holding", "timing")
WARMUP = 16  # samples in the warm-up batch (>= 4 for CKA)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def build(depth: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    cfg = ModelConfig(spec=ModelSpec(arch=f"resnet{depth}", kind="ann", width=1.0), num_classes=10,
                      in_channels=3, input_size=32)
    return build_model(cfg).eval()


def conv_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def inputs(n_batches: int, size: int, seed: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(size, 3, 32, 32, generator=g) for _ in range(n_batches)]


@torch.no_grad()
def run_forward(a: nn.Module, b: nn.Module, names: list[str], xs: list[Tensor]) -> float:
    for x in xs:
        a(x)
        b(x)
    return 0.0


@torch.no_grad()
def run_grams(a: nn.Module, b: nn.Module, names: list[str], xs: list[Tensor]) -> float:
    """Forward passes with Gram-forming hooks; returns the seconds spent inside the hooks."""
    spent = [0.0]

    def hook(module, args, out):
        start = process_time()
        x = out.detach().flatten(1)
        x = x - x.mean(dim=0, keepdim=True)
        x @ x.T
        spent[0] += process_time() - start

    handles = [dict(m.named_modules())[n].register_forward_hook(hook) for m in (a, b) for n in names]
    try:
        for x in xs:
            a(x)
            b(x)
    finally:
        for h in handles:
            h.remove()
    return spent[0]


def run_suite(a: nn.Module, b: nn.Module, names: list[str], xs: list[Tensor]) -> float:
    result = compare_models(a, b, xs, layers_a=names, layers_b=names)
    assert result.matrix.shape == (len(names), len(names)) and torch.isfinite(result.matrix).all()
    return 0.0


@torch.no_grad()
def run_holding(a: nn.Module, b: nn.Module, names: list[str], xs: list[Tensor]) -> float:
    acc = MinibatchCKA(len(names), len(names))
    for x in xs:
        acc.update(extract_features(a, x, names), extract_features(b, x, names))
    acc.compute()
    return 0.0


RUNS = {"forward": run_forward, "grams": run_grams, "suite": run_suite, "holding": run_holding}


def worker(args) -> None:
    """One measurement in this (fresh) process; prints one JSON line.

    forward/suite/holding: one pass, its time and the process's peak RSS. timing: forward,
    grams and suite in turn, --repeats rounds, best time of each and the best Gram floor."""
    torch.set_num_threads(args.threads)
    if args.worker == "timing" and not args.system_malloc:
        keep_freed_memory()
    a, b = build(args.depth, args.seed), build(args.depth, args.seed + 1)
    names = conv_names(a)
    xs = inputs(args.batches, args.batch_size, args.seed)
    baseline = peak_mb()
    passes = ("forward", "grams", "suite") if args.worker == "timing" else (args.worker,)
    for name in passes:
        RUNS[name](a, b, names, inputs(1, WARMUP, args.seed + 7))
    best = {name: float("inf") for name in passes}
    floor = float("inf")
    for _ in range(args.repeats if args.worker == "timing" else 1):
        for name in passes:
            start = process_time()
            inside = RUNS[name](a, b, names, xs)
            best[name] = min(best[name], process_time() - start)
            if name == "grams":
                floor = min(floor, inside)
    print(json.dumps({"mode": args.worker, "depth": args.depth, "convs": len(names), "seconds": best,
                      "floor": floor, "peak_mb": peak_mb(), "baseline_mb": baseline}))


def measure(mode: str, depth: int, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--depth", str(depth), "--batches", str(args.batches),
           "--batch-size", str(args.batch_size), "--repeats", str(args.repeats), "--threads", str(args.threads),
           "--seed", str(args.seed)] + (["--system-malloc"] if args.system_malloc else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} ResNet-{depth} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="20,56,110", help="comma-separated ResNet depths")
    parser.add_argument("--batches", type=int, default=1, help="timed batches per pass")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per process (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-holding", action="store_true", help="skip the feature-holding path")
    parser.add_argument("--system-malloc", action="store_true",
                        help="time with glibc's default allocator (page faults included)")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    modes = ["forward", "suite", "timing"] + ([] if args.no_holding else ["holding"])
    print(f"{args.batches} x {args.batch_size} random 3x32x32 inputs, every conv hooked, {args.threads} "
          f"thread(s), CPU seconds best of {args.repeats}; load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'ResNet':>6} {'convs':>5} {'fwd MB':>7} {'CKA MB':>7} {'MB x':>5} {'fwd s':>6} {'CKA s':>6} "
          f"{'ovh s':>6} {'floor':>6} {'ovh x':>5}" + ("" if args.no_holding else f" {'hold MB':>8}"))
    baseline = None
    for depth in (int(d) for d in args.depths.split(",")):
        got = {mode: measure(mode, depth, args) for mode in modes}
        t = got["timing"]
        fwd_s, cka_s, floor = t["seconds"]["forward"], t["seconds"]["suite"], t["floor"]
        fwd_mb, cka_mb = got["forward"]["peak_mb"], got["suite"]["peak_mb"]
        baseline = got["forward"]["baseline_mb"]
        print(f"{depth:>6} {t['convs']:>5} {fwd_mb:>7.0f} {cka_mb:>7.0f} {cka_mb / fwd_mb:>5.2f} {fwd_s:>6.2f} "
              f"{cka_s:>6.2f} {cka_s - fwd_s:>6.2f} {floor:>6.2f} {(cka_s - fwd_s) / floor:>5.2f}"
              + ("" if args.no_holding else f" {got['holding']['peak_mb']:>8.0f}"), flush=True)
    print("MB x = CKA peak / forward peak (target <= 1.3)")
    print("ovh x = (CKA s - fwd s) / Gram floor (target <= 1.25)")
    print(f"peak RSS after imports and models: {baseline:.0f} MB; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
