"""GPU check: the suite's CUDA paths run, how fast, in how much memory, and the LIF's share.

On a CUDA machine, for ResNet-20 as an SNN (T=4) and as its ANN twin at CIFAR size (random
3x32x32 inputs in [0, 1], 10 classes), it runs and times:

  train   one training step as `suite train` takes it (suite.train.train_step): mixed precision
          (bf16 where the GPU has it, else fp16 with a gradient scaler), channels_last, SGD,
          cuDNN autotuning on
  pgd10   PGD-10 at 8/255 through torchattacks, BPTT for the SNN (suite.attacks.methods.craft)
  cka     CKA of the model against itself on its default layers (suite.cka.compare_layers),
          Grams on the GPU

and prints samples/s and peak GPU memory (torch.cuda.max_memory_allocated) for each; then the
LIF's share of an SNN training step (torch.profiler: GPU time of the LIFScan forward and
backward nodes over all GPU time of the step) and SNN step / (T x ANN step). A LIF share above
20% is the case for fusing the recurrence on CUDA (torch.compile or a Triton kernel).

`--dry-run` runs the same code on the CPU at a tiny size (width 0.25, 8x8 inputs, T=2, batch
8), so the script is tested without a GPU; its numbers say nothing about a GPU.

    .venv/bin/python benchmarks/gpu_check.py [--batch 128] [--repeats 20] [--timesteps 4]
                                             [--cka-samples 1024] [--dry-run]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own start/stop lines stay quiet

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from suite.attacks.settings import AttackConfig  # noqa: E402
from suite.attacks.gradients import attack_model  # noqa: E402
from suite.attacks.methods import Budget, craft  # noqa: E402
from suite.cka.compare import Options, compare_layers  # noqa: E402
from suite.models import ModelConfig, ModelSpec, build_model  # noqa: E402
from suite.train.loop import amp_dtype, deterministic_algorithms, memory_format, to_device, train_step  # noqa: E402

LIF_NODES = ("LIFScan", "autograd::engine::evaluate_function: LIFScanBackward")  # forward, backward
FUSE_ABOVE = 0.20  # issue 12: fuse the LIF on CUDA if it takes more than this share of a step


@dataclass(frozen=True)
class Size:
    batch: int
    repeats: int
    timesteps: int
    width: float
    side: int
    cka_samples: int
    cka_batch: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128, help="training and attack batch size (128)")
    ap.add_argument("--repeats", type=int, default=20, help="timed steps per measurement (20)")
    ap.add_argument("--timesteps", type=int, default=4, help="SNN time steps T (4)")
    ap.add_argument("--cka-samples", type=int, default=1024, help="samples in the CKA run (1024)")
    ap.add_argument("--cka-batch", type=int, default=256, help="CKA minibatch (256)")
    ap.add_argument("--dry-run", action="store_true", help="the same code on the CPU at a tiny size")
    return ap.parse_args(argv)


class Clock:
    """Wall time of a block on `device`, waiting for the GPU at both ends."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def time(self, fn, repeats: int) -> float:
        """Median seconds of `repeats` calls of fn(), after one untimed call (warm-up, autotuning)."""
        fn()
        times = []
        for _ in range(repeats):
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


def peak_memory(device: torch.device, fn) -> float | None:
    """Peak GPU memory (MiB) allocated while fn() runs; None (and fn not run) on the CPU."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def build(kind: str, size: Size, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(spec=ModelSpec(arch="resnet20", kind=kind, width=size.width, timesteps=size.timesteps),
                      num_classes=10, in_channels=3, input_size=size.side)
    return build_model(cfg).to(device, memory_format=memory_format(device))


def random_batch(n: int, size: Size, device: torch.device, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size.side, size.side, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    return to_device(x, device), y.to(device)


def train_closure(model, size: Size, device: torch.device):
    """One AMP training step on a fixed random batch, as suite.train runs it."""
    dtype = amp_dtype(device, amp=True)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = random_batch(size.batch, size, device)
    model.train()
    return lambda: train_step(model, model, opt, x, y, tet=False, autocast_dtype=dtype, scaler=scaler)


def pgd_closure(model, size: Size, device: torch.device):
    """PGD-10 at 8/255 (alpha 2/255, random start) on a fixed random batch; BPTT for the SNN."""
    config = AttackConfig(methods=("pgd",), eps=(8 / 255,), alpha=2 / 255, steps=10, batch_size=size.batch)
    model.eval()
    attacker = attack_model(model, "bptt", None, None).to(device)
    x, y = random_batch(size.batch, size, device, seed=2)
    return lambda: craft(attacker, "pgd", x, y, 8 / 255, Budget.of(config), seed=0)


def cka_closure(model, size: Size, device: torch.device):
    """CKA of the model against itself over `cka_samples` random samples, its default layers."""
    batches = [(random_batch(size.cka_batch, size, device, seed=10 + i)[0],)
               for i in range(max(1, size.cka_samples // size.cka_batch))]
    return lambda: compare_layers(model, batches, time="mean", stream=Options(device))


def lif_share(model, step, device: torch.device, repeats: int) -> float:
    """The LIF's share of a training step: time in the LIFScan forward and backward nodes over
    the step's time; GPU time on CUDA (all kernels), CPU time on the CPU."""
    step()  # warm-up outside the profile
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        for _ in range(repeats):
            with record_function("step"):
                step()
        if on_gpu:
            torch.cuda.synchronize(device)
    events = prof.key_averages()
    if on_gpu:
        total = sum(e.self_device_time_total for e in events)
        lif = sum(e.device_time_total for e in events if e.key in LIF_NODES)
    else:
        total = sum(e.cpu_time_total for e in events if e.key == "step")
        lif = sum(e.cpu_time_total for e in events if e.key in LIF_NODES)
    if total <= 0:
        raise RuntimeError("the profiler recorded no time for the step")
    return lif / total


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        device = torch.device("cpu")
        size = Size(batch=8, repeats=1, timesteps=2, width=0.25, side=8, cka_samples=16, cka_batch=8)
    elif not torch.cuda.is_available():
        print("error: no CUDA device here; --dry-run runs the same code on the CPU", file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda")
        size = Size(batch=args.batch, repeats=args.repeats, timesteps=args.timesteps, width=1.0, side=32,
                    cka_samples=args.cka_samples, cka_batch=args.cka_batch)
    torch.manual_seed(0)
    clock = Clock(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run: tiny size)"
    dtype = amp_dtype(device, amp=True)
    print(f"gpu_check on {where}; torch {torch.__version__}")
    print(f"ResNet-20 width {size.width:g}, {size.side}x{size.side} inputs, SNN T={size.timesteps}, "
          f"batch {size.batch}, training AMP {str(dtype).removeprefix('torch.') if dtype else 'off'}")
    print(f"{'model':<5} {'task':<6} {'samples/s':>12} {'peak MiB':>10}")
    step_seconds = {}
    with deterministic_algorithms(False, device):  # cuDNN autotuning, as suite train runs
        for kind in ("snn", "ann"):
            model = build(kind, size, device)
            for task, make, n in (("train", train_closure, size.batch), ("pgd10", pgd_closure, size.batch),
                                  ("cka", cka_closure, size.cka_samples // size.cka_batch * size.cka_batch)):
                fn = make(model, size, device)
                seconds = clock.time(fn, size.repeats if task != "cka" else max(1, size.repeats // 10))
                peak = peak_memory(device, fn)
                if task == "train":
                    step_seconds[kind] = seconds
                peak_text = f"{peak:10.0f}" if peak is not None else f"{'-':>10}"
                print(f"{kind:<5} {task:<6} {n / seconds:12.1f} {peak_text}")
            if kind == "snn":
                share = lif_share(model, train_closure(model, size, device), device, max(1, size.repeats // 4))
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    ratio = step_seconds["snn"] / (size.timesteps * step_seconds["ann"])
    time_kind = "GPU" if device.type == "cuda" else "CPU"
    print(f"LIF share of an SNN training step ({time_kind} time): {share:.1%}")
    print(f"  {'above' if share > FUSE_ABOVE else 'not above'} the {FUSE_ABOVE:.0%} that calls for a fused LIF kernel")
    print(f"SNN step / (T x ANN step): {step_seconds['snn'] * 1e3:.2f} ms / ({size.timesteps} x "
          f"{step_seconds['ann'] * 1e3:.2f} ms) = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
