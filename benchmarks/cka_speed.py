"""CKA speed and precision: the suite's `compare_models` vs torch-cka on ResNet-20 twins, CPU.

For each case two seeded, untrained networks (ResNet-20s with calibrated BatchNorm running
statistics, see below) are compared layer by layer -- for ResNet-20 every convolution and
every block output, 30 layers -- on the same seeded uniform [0, 1] CIFAR-size inputs
(default 1024 samples in batches of 256). In one run it times

    forward floor  both models' forward passes alone, no hooks (the floor no CKA can beat)
    suite          suite.cka.compare_models(model_a, model_b, loader, layers, layers, time="mean")
    torch-cka      torch_cka.CKA(model_a, model_b, model1_layers=..., model2_layers=...).compare(...)

and prints each one's total (wall clock and CPU time of the process), its CKA overhead
(total minus the floor), the overhead ratio, and each one's max abs deviation from float64
references. CPU time is printed because on a shared machine wall time also counts other
processes' load; there, --threads 1 gives the steadiest numbers (with 2 OpenMP threads on 2
busy cores, barrier waits can slow small ops several-fold, unevenly between runs).

Cases (--case, comma-separated, or "all"):
    ann-snn  ResNet-20 ANN vs its SNN twin (the ANN's weights, LIF, T=4, time="mean")
    ann-ann  ResNet-20 ANN vs a second ANN (next seed): both libraries see identical [B, D]
    plain    docs/design.md's 24-layer plain conv-ReLU stack (16 channels at 16x16, d=4096; PyTorch
             default init, no BatchNorm) vs a second one (next seed): with depth the features
             collapse onto a common vector (|mean| / spread up to ~1e7 at layer 24), the regime
             where torch-cka's raw float32 Grams cancel catastrophically (negative self-HSIC,
             NaN CKA). (ResNet-20 with residual=False does not get there at init: with
             default or fully calibrated BN statistics |mean| / spread stays below 1.)

What each library sees. torch-cka's hooks store a module's raw output and flatten it. An SNN
twin runs every module on the merged [T*B, ...] batch, so for torch-cka the SNN is wrapped
(`TimeMeanTaps`): a tap module per layer receives the layer's output and returns its time
mean [B, D], and torch-cka hooks the taps. Both libraries therefore compare exactly the same
[B, D] features (the suite's time="mean"), and the wrapper's time mean costs what the suite's
own reduction costs. torch-cka runs on deep copies (it never removes its hooks) under
torch.no_grad() (its compare() does not disable autograd; no_grad only helps it).

Estimator. Both libraries estimate the same thing: the unbiased HSIC of Nguyen, Raghu &
Kornblith (2021, Eq. 3) per minibatch, averaged over minibatches, CKA = mean HSIC(K, L) /
sqrt(mean HSIC(K, K) mean HSIC(L, L)). torch-cka evaluates Eq. 3 literally on raw float32
Grams (diagonal zeroed, trace(K @ L) per pair, float32 sums); the suite U-centres Grams of
mean-subtracted features and accumulates in float64. Eq. 3 is invariant to shifting the
features by a constant, so one reference fits both. The reference here is computed
independently of both: features mean-centred in float64, K = X Xᵀ with zero diagonal, Eq. 3
term by term (tr(KL) = sum(K*L), 1ᵀKL1 = (K1)·(L1)) in float64, HSIC summed over batches:

    ref f64-feat   float64 reference on the float32 features both libraries saw (captured in
                   a separate, untimed pass with the same batches): the CKA arithmetic error
    ref f64-model  float64 reference on features from the models converted to .double() on
                   float64 inputs: also includes the float32 forward pass's own rounding
                   (and, for the SNN, any spike that flips between float32 and float64)

Calibration. At default init BatchNorm running stats are mean 0 / var 1, which leaves the
SNN twin mostly silent (15 of its 19 LIF layers fire no spike at all); so each model first
runs --calib-batches batches of other seeded uniform inputs in train mode (cumulative
running averages, momentum=None), then everything runs in eval mode. The SNN twin gets the
ANN's weights and its own calibrated statistics; its firing rates (min/max over LIF layers)
are printed.

Timing. The floor and the suite run --repeats times and the floor once more after
torch-cka (best time kept); torch-cka runs once (its overhead is tens of seconds, so a few
seconds of noise on a shared CPU moves its ratio little). A warm-up forward pass precedes
all timing. Unless --system-malloc is given, glibc is told to keep freed memory (see
`keep_freed_memory`): otherwise page faults, not compute, take a third or more of the forward floor.

    .venv/bin/python benchmarks/cka_speed.py                  # all cases, 5-10 min on 2 cores
    .venv/bin/python benchmarks/cka_speed.py --case ann-ann,plain --threads 1
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import warnings
from time import perf_counter, process_time

import torch
import torch_cka
import torch_cka.cka
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from allocator import keep_freed_memory  # benchmarks/allocator.py (the script's folder is on sys.path)

from suite.cka import compare_models
from suite.models import LIF, ModelConfig, ModelSpec, build_model
from suite.models.resnet import PreActBlock

# torch-cka wraps its batch loop in tqdm; drop the progress bar (output only, no cost change).
torch_cka.cka.tqdm = lambda iterable, **kwargs: iterable

CASES = {
    "ann-snn": "ResNet-20 ANN vs its SNN twin (same weights, T={T}, time mean)",
    "ann-ann": "ResNet-20 ANN vs a second ResNet-20 ANN (seed+1)",
    "plain": "24-layer plain conv-ReLU stack vs a second one (seed+1), no BatchNorm, default init",
}
GOAL_RATIO, GOAL_DEV = 10.0, 1e-5


# ----------------------------------------------------------------------------- models

def calibrate(model: nn.Module, batches: int, batch_size: int, seed: int) -> None:
    """Set BatchNorm running stats from `batches` train-mode passes on seeded uniform inputs."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.rand(batch_size, 3, 32, 32, generator=g))
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


class ConvReLU(nn.Sequential):
    """conv 3x3 -> ReLU: one layer of the plain stack."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())


def plain_stack(depth: int = 24, width: int = 16) -> nn.Sequential:
    """docs/design.md's 24-layer ReLU conv stack: 3x32x32 -> 16x16x16 (d=4096) -> 23 more layers.
    PyTorch's default init (with biases), no normalisation: with depth the features collapse
    onto a common vector (|mean| / spread: ~1 at layer 1, ~1e7 at layer 24)."""
    return nn.Sequential(ConvReLU(3, width, 2), *[ConvReLU(width, width) for _ in range(depth - 1)])


def build_pair(case: str, seed: int, T: int, calib_batches: int, batch_size: int):
    if case == "plain":
        torch.manual_seed(seed)
        model_a = plain_stack().eval()
        torch.manual_seed(seed + 1)
        return model_a, plain_stack().eval()
    cfg = ModelConfig(spec=ModelSpec(arch="resnet20", kind="ann", timesteps=T))
    torch.manual_seed(seed)
    model_a = build_model(cfg)
    if case == "ann-snn":
        model_b = build_model(dataclasses.replace(cfg, spec=dataclasses.replace(cfg.spec, kind="snn")))
        model_b.load_state_dict(model_a.state_dict())  # the twin: same weights, LIF instead of ReLU
    else:
        torch.manual_seed(seed + 1)
        model_b = build_model(cfg)
    calibrate(model_a, calib_batches, batch_size, seed=1000 + seed)
    calibrate(model_b, calib_batches, batch_size, seed=1000 + seed)
    return model_a, model_b


def layer_list(model: nn.Module) -> list[str]:
    """ResNet: every convolution and every block output; plain stack: every conv-ReLU output."""
    if isinstance(model, nn.Sequential):
        return [n for n, m in model.named_modules() if isinstance(m, ConvReLU)]
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, PreActBlock))]


def firing_rates(model: nn.Module, x: Tensor) -> list[float]:
    """Mean spike rate of every LIF layer on x (also serves as the warm-up pass)."""
    rates, handles = [], []
    for m in model.modules():
        if isinstance(m, LIF):
            handles.append(m.register_forward_hook(lambda mod, i, o: rates.append(o.mean().item())))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return rates


def reduce_out(model: nn.Module, out: Tensor, B: int) -> Tensor:
    """A hooked output as [B, D]: flattened (ANN) or the mean over T of [T*B, ...] (SNN)."""
    if getattr(model, "kind", "ann") == "snn":
        return out.reshape(model.timesteps, B, -1).mean(0)
    return out.flatten(1)


class _TimeMean(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.T = model.timesteps

    def forward(self, out: Tensor) -> Tensor:  # [T*B, ...] -> [B, D]
        return out.reshape(self.T, out.shape[0] // self.T, -1).mean(0)


class TimeMeanTaps(nn.Module):
    """An SNN as torch-cka should see it: module `taps.<name with : for .>` outputs the time
    mean [B, D] of SNN layer <name>; torch-cka hooks the taps."""

    def __init__(self, snn: nn.Module, names: list[str]):
        super().__init__()
        self.snn = snn
        self.taps = nn.ModuleDict({n.replace(".", ":"): _TimeMean(snn) for n in names})
        modules = dict(snn.named_modules())
        for n in names:
            tap = self.taps[n.replace(".", ":")]
            modules[n].register_forward_hook(self._feeder(tap))

    @staticmethod
    def _feeder(tap: nn.Module):
        def hook(module, inputs, out):
            tap(out)  # torch-cka's hook on the tap records the time mean; `out` flows on unchanged
        return hook

    @staticmethod
    def tap_name(name: str) -> str:
        return "taps." + name.replace(".", ":")

    def forward(self, x: Tensor) -> Tensor:
        return self.snn(x)


# ----------------------------------------------------------------------------- runs

def timed(fn, repeats: int = 1):
    """((best wall s, best CPU s of this process) over `repeats` calls, last result)."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        start, start_cpu = perf_counter(), process_time()
        result = fn()
        wall, cpu = min(wall, perf_counter() - start), min(cpu, process_time() - start_cpu)
    return (wall, cpu), result


def forward_floor(model_a, model_b, loader) -> None:
    with torch.no_grad():
        for (x,) in loader:
            model_a(x)
            model_b(x)


def run_torch_cka(model_a, model_b, names, loader):
    """torch-cka on deep copies: ((wall s, CPU s), CKA [La, Lb] ordered like `names`, error)."""
    a, b = copy.deepcopy(model_a), copy.deepcopy(model_b)  # it never removes its hooks
    names_b = names
    if getattr(b, "kind", None) == "snn":
        b = TimeMeanTaps(b, names)
        names_b = [TimeMeanTaps.tap_name(n) for n in names]
    holder = {}

    def go():
        cka = torch_cka.CKA(a, b, model1_name="model_a", model2_name="model_b",
                            model1_layers=names, model2_layers=names_b, device="cpu")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            try:
                cka.compare(loader, loader)
            except AssertionError as exc:  # "HSIC computation resulted in NANs"; matrix is set
                holder["error"] = str(exc)
        holder["cka"] = cka

    seconds, _ = timed(go)
    cka = holder["cka"]
    # Its rows/columns follow the order in which the hooks fired in the forward pass (a
    # block's output fires after its convs), not `model1_layers` nor export()'s layer lists.
    order_a, order_b = list(cka.model1_features), list(cka.model2_features)
    assert len(order_a) == len(names) and len(order_b) == len(names_b)
    rows = [order_a.index(n) for n in names]
    cols = [order_b.index(n) for n in names_b]
    return seconds, cka.hsic_matrix.double()[rows][:, cols], holder.get("error")


# ----------------------------------------------------------------------------- reference

class Eq3Reference:
    """Unbiased HSIC (Nguyen et al. 2021, Eq. 3) over minibatches in float64, written out term
    by term on mean-centred features; independent of both libraries' code."""

    def __init__(self, La: int, Lb: int):
        self.ab = torch.zeros(La, Lb, dtype=torch.float64)
        self.aa = torch.zeros(La, dtype=torch.float64)
        self.bb = torch.zeros(Lb, dtype=torch.float64)

    @staticmethod
    def _terms(feats: list[Tensor]):
        Ks = []
        for f in feats:
            x = f.double().flatten(1)
            x = x - x.mean(0, keepdim=True)
            K = x @ x.T
            K.fill_diagonal_(0)
            Ks.append(K)
        K = torch.stack(Ks)  # [L, n, n]
        return K.flatten(1), K.sum((1, 2)), K.sum(2)  # [L, n²], [L] = 1ᵀK1, [L, n] = K1

    @staticmethod
    def _hsic(F1, S1, R1, F2, S2, R2, n):
        # (tr(KL) + 1ᵀK1 1ᵀL1 / ((n-1)(n-2)) - 2/(n-2) 1ᵀKL1) / (n(n-3))
        return (F1 @ F2.T + S1[:, None] * S2[None, :] / ((n - 1) * (n - 2))
                - 2.0 / (n - 2) * (R1 @ R2.T)) / (n * (n - 3))

    def update(self, feats_a: list[Tensor], feats_b: list[Tensor]) -> None:
        n = feats_a[0].shape[0]
        ta, tb = self._terms(feats_a), self._terms(feats_b)
        self.ab += self._hsic(*ta, *tb, n)
        self.aa += self._hsic(*ta, *ta, n).diagonal()
        self.bb += self._hsic(*tb, *tb, n).diagonal()

    def cka(self) -> Tensor:
        denom = torch.sqrt(self.aa[:, None].clamp(min=0) * self.bb[None, :].clamp(min=0))
        return torch.where(denom > 0, self.ab / denom, torch.full_like(self.ab, float("nan")))


def features(model: nn.Module, x: Tensor, names: list[str]) -> list[Tensor]:
    """[B, D] features of the named layers (time mean for the SNN), reduced inside the hooks."""
    modules, got, handles = dict(model.named_modules()), {}, []
    for n in names:
        handles.append(modules[n].register_forward_hook(
            lambda m, i, o, n=n: got.__setitem__(n, reduce_out(model, o.detach(), x.shape[0]))))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return [got[n] for n in names]


def references(model_a, model_b, names, loader):
    """(ref f64-feat, ref f64-model, mean/spread of model a's last layer feature)."""
    La = len(names)
    same, deep = Eq3Reference(La, La), Eq3Reference(La, La)
    a64, b64 = copy.deepcopy(model_a).double(), copy.deepcopy(model_b).double()
    ratio = 0.0
    for (x,) in loader:
        fa, fb = features(model_a, x, names), features(model_b, x, names)
        same.update(fa, fb)
        last = fa[-1].double()
        ratio = max(ratio, (last.mean().abs() / last.std(0).mean()).item())
        del fa, fb
        deep.update(features(a64, x.double(), names), features(b64, x.double(), names))
    return same.cka(), deep.cka(), ratio


def deviation(got: Tensor, ref: Tensor) -> float:
    ok = torch.isfinite(got) & torch.isfinite(ref)
    return (got[ok] - ref[ok]).abs().max().item() if ok.any() else float("nan")


# ----------------------------------------------------------------------------- main

def run_case(case: str, args) -> dict:
    desc = CASES[case].format(T=args.timesteps)
    model_a, model_b = build_pair(case, args.seed, args.timesteps, args.calib_batches, args.batch_size)
    names = layer_list(model_a)
    assert names == layer_list(model_b)
    x = torch.rand(args.samples, 3, 32, 32, generator=torch.Generator().manual_seed(args.seed))
    loader = DataLoader(TensorDataset(x), batch_size=args.batch_size, shuffle=False)
    what = "every conv-ReLU output" if case == "plain" else "every conv + every block output"
    print(f"\n== {case}: {desc}")
    print(f"   {len(names)} x {len(names)} layers ({what}), {args.samples} samples in "
          f"{len(loader)} batches of {args.batch_size}, {torch.get_num_threads()} threads")

    warm = x[: args.batch_size]
    firing_rates(model_a, warm)  # warm-up
    rates = firing_rates(model_b, warm)
    if rates:
        print(f"   SNN firing rate over its {len(rates)} LIF layers: min {min(rates):.3f}, "
              f"max {max(rates):.3f} (after BN calibration)")

    floor1, _ = timed(lambda: forward_floor(model_a, model_b, loader), args.repeats)
    suite_t, res = timed(lambda: compare_models(model_a, model_b, loader, names, names, time="mean"),
                         args.repeats)
    tcka_t, m_tcka, err = run_torch_cka(model_a, model_b, names, loader)
    floor2, _ = timed(lambda: forward_floor(model_a, model_b, loader), 1)
    floor_t = (min(floor1[0], floor2[0]), min(floor1[1], floor2[1]))
    m_suite = res.matrix

    ref_feat, ref_model, mean_spread = references(model_a, model_b, names, loader)

    ov_suite = [t - f for t, f in zip(suite_t, floor_t)]
    ov_tcka = [t - f for t, f in zip(tcka_t, floor_t)]
    ratio = [b / a if a > 0 else float("inf") for a, b in zip(ov_suite, ov_tcka)]
    out = dict(case=case, floor=floor_t, suite=suite_t, tcka=tcka_t, ov_suite=ov_suite,
               ov_tcka=ov_tcka, ratio=ratio,
               dev_suite=deviation(m_suite, ref_feat), dev_tcka=deviation(m_tcka, ref_feat),
               dev_suite_m=deviation(m_suite, ref_model), dev_tcka_m=deviation(m_tcka, ref_model),
               nan_suite=int(torch.isnan(m_suite).sum()), nan_tcka=int(torch.isnan(m_tcka).sum()),
               nan_ref=int(torch.isnan(ref_feat).sum()), cells=m_suite.numel())

    print(f"   last layer of model a: |mean| / mean per-feature std = {mean_spread:.3g}")
    print(f"   {'':<14}{'wall s':>8}{'overhead':>10}{'CPU s':>8}{'overhead':>10}"
          f"{'max|dev| f64-feat':>19}{'max|dev| f64-model':>20}{'NaN':>9}")
    print(f"   {'forward floor':<14}{floor_t[0]:>8.2f}{'':>10}{floor_t[1]:>8.2f}")
    for label, t, ov, key in (("suite", suite_t, ov_suite, "suite"), ("torch-cka", tcka_t, ov_tcka, "tcka")):
        nan_text = f"{out['nan_' + key]}/{out['cells']}"
        print(f"   {label:<14}{t[0]:>8.2f}{ov[0]:>10.2f}{t[1]:>8.2f}{ov[1]:>10.2f}"
              f"{out['dev_' + key]:>19.2e}{out['dev_' + key + '_m']:>20.2e}{nan_text:>9}")
    print(f"   overhead ratio torch-cka / suite: {ratio[0]:.1f}x wall, {ratio[1]:.1f}x CPU")
    print(f"   suite vs torch-cka, max |diff| where both finite: {deviation(m_suite, m_tcka):.2e}")
    if out["nan_tcka"]:
        bad = [names[i] for i in torch.isnan(m_tcka).any(1).nonzero().flatten().tolist()]
        print(f"   torch-cka NaN rows (model a layers with a NaN entry): {', '.join(bad)}")
        if err:
            print(f"   torch-cka raised AssertionError: {err}")
    if out["nan_ref"]:
        print(f"   note: the float64 reference itself has {out['nan_ref']} NaN entries (self-HSIC <= 0)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--case", default="all", help=f"comma-separated from {', '.join(CASES)}, or all")
    parser.add_argument("--timesteps", type=int, default=4, help="SNN time steps T")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs of the floor and the suite (best kept)")
    parser.add_argument("--calib-batches", type=int, default=2, help="train-mode passes setting BN stats")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's allocator as is (default: keep freed memory, see keep_freed_memory)")
    args = parser.parse_args()
    cases = list(CASES) if args.case == "all" else [c.strip() for c in args.case.split(",")]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)} or all")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    sys.stdout.reconfigure(line_buffering=True)  # show each case as it finishes, even when piped
    kept = False if args.system_malloc else keep_freed_memory()

    print("CKA speed: suite.cka.compare_models vs torch-cka", torch_cka.__version__, "on CPU, torch",
          torch.__version__)
    print("max|dev| f64-feat : vs a float64 Eq. 3 reference on the same float32 features both saw")
    print("max|dev| f64-model: vs the same reference on features of the models in float64 (.double())")
    print("overhead          : total minus the forward floor (both models' forward passes, no hooks)")
    print("allocator         :", "glibc keeps freed memory (no mmap/trim: no page faults in timed runs)"
          if kept else "system default (freed blocks unmapped; page faults land in the timings)")
    results = [run_case(c, args) for c in cases]

    print("\n== summary (wall seconds; CPU-time ratio in brackets; deviations vs f64-feat)")
    print(f"{'case':<9}{'floor':>7}{'suite':>8}{'torch-cka':>10}{'ovh suite':>10}{'ovh t-cka':>10}"
          f"{'ratio':>16}{'dev suite':>11}{'dev t-cka':>11}{'NaN t-cka':>10}")
    for r in results:
        ratio = f"{r['ratio'][0]:.1f}x ({r['ratio'][1]:.1f}x)"
        print(f"{r['case']:<9}{r['floor'][0]:>7.1f}{r['suite'][0]:>8.1f}{r['tcka'][0]:>10.1f}"
              f"{r['ov_suite'][0]:>10.1f}{r['ov_tcka'][0]:>10.1f}{ratio:>16}"
              f"{r['dev_suite']:>11.1e}{r['dev_tcka']:>11.1e}{r['nan_tcka']:>10}")
    for r in results:
        ok_ratio = r["ratio"][0] >= GOAL_RATIO
        ok_dev = r["dev_suite"] < GOAL_DEV and r["nan_suite"] <= r["nan_ref"]
        print(f"goal {r['case']}: suite CKA overhead >= {GOAL_RATIO:g}x smaller than torch-cka's: "
              f"{'yes' if ok_ratio else 'NO'} ({r['ratio'][0]:.1f}x); suite max|dev| f64-feat < "
              f"{GOAL_DEV:g}: {'yes' if ok_dev else 'NO'} ({r['dev_suite']:.1e})")


if __name__ == "__main__":
    main()
