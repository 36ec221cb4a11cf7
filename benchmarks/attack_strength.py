"""Robust accuracy of the demo's SNN and ANN under FGSM, PGD-10, APGD-CE, Square and AutoAttack,
and the worst case per sample over all of them, each with its wall time.

The question it answers: does the number a quick attack gives (PGD-10, the demo's) overstate a
model's robustness, and by how much, once the field's reference attacks have had their turn?

Models: the demo's twins (suite.demo.DEMO: ResNet-20, width 0.5, T=4, digits at 16x16, 8 epochs),
trained here through `suite.train.train_one` unless a finished checkpoint of the same name is
in --runs. Attacks: the first --samples test samples, eps 8/255, BPTT with the training surrogate
for the SNN, budgets as the CLI's defaults (PGD-10 with alpha 2/255; APGD-CE 100 iterations;
Square 5000 queries; AutoAttack standard: APGD-CE, APGD-T, FAB-T with 100 iterations and 9
targets, Square 5000 queries). Each method runs on its own (`run_attacks`), so its wall time is
its own; the worst case combines their per-sample results (`suite.attacks.worst.worst_case`).
On a CPU the standard AutoAttack budget on the SNN takes hours; --iterations, --queries and
--autoattack-samples (AutoAttack on the first N samples only) bound it, and the table says what ran.

    .venv/bin/python benchmarks/attack_strength.py [--samples 256] [--runs runs] [--threads 2]
        [--methods fgsm,pgd,apgd-ce,square,autoattack] [--iterations 100] [--queries 5000]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from suite.attacks import AttackConfig, run_attacks
from suite.attacks.worst import worst_case
from suite.checkpoint import load_model
from suite.data import load_dataset
from suite.demo import DEMO
from suite.device import select_device
from suite.errors import SuiteError
from suite.results.attacks import format_eps
from suite.train import train_one
from suite.values import parse_list
from suite.where import Where

LABELS = {"fgsm": "FGSM", "pgd": "PGD-10", "apgd-ce": "APGD-CE", "square": "Square", "autoattack": "AutoAttack"}


def checkpoint(kind: str, runs: Path, device: str) -> Path:
    """The demo's checkpoint of `kind`: reused when finished, else trained with the demo's settings."""
    config = DEMO.train.variant(kind=kind)
    path = runs / f"{config.run_name()}.pt"
    if path.is_file():
        try:
            _, ckpt = load_model(path, "cpu")
            if ckpt.epoch >= config.optim.epochs:
                print(f"{kind}: reusing {path}", flush=True)
                return path
        except SuiteError:
            pass
    t0 = time.perf_counter()
    result = train_one(config, Where(out=runs, device=device, show_progress=False))
    print(f"{kind}: trained {result.checkpoint} in {time.perf_counter() - t0:.0f} s "
          f"(test accuracy {result.test_accuracy:.1%})", flush=True)
    return result.checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--autoattack-samples", type=int, default=None,
                        help="AutoAttack on the first N samples only (default: --samples); samples nest, so "
                             "the worst case over every method is also reported on those N")
    parser.add_argument("--eps", type=float, default=8 / 255)
    parser.add_argument("--methods", default="fgsm,pgd,apgd-ce,square,autoattack")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--kinds", default="snn,ann")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    methods = parse_list(args.methods, "--methods")
    kinds = args.kinds.split(",")
    few = min(args.autoattack_samples or args.samples, args.samples)

    loaded = {kind: load_model(checkpoint(kind, args.runs, str(device)), device) for kind in kinds}
    data = {kind: load_dataset(ckpt.data_spec, "datasets", "test") for kind, (_, ckpt) in loaded.items()}
    results: dict[str, dict[str, tuple]] = {kind: {} for kind in kinds}  # kind -> method -> (store, seconds)
    for method in methods:  # every model's cheap attacks first, so a timeout costs the expensive ones
        n = few if method == "autoattack" else args.samples
        for kind in kinds:
            cfg = AttackConfig(methods=(method,), eps=(args.eps,), steps=10, alpha=2 / 255,
                               iterations=args.iterations, queries=args.queries, samples=n,
                               batch_size=args.batch_size, seed=0, keep_clean=False)
            t0 = time.perf_counter()
            store = run_attacks(loaded[kind][0], data[kind], cfg, device=device)
            results[kind][method] = (store, time.perf_counter() - t0)
            print(f"{kind:4} {LABELS.get(method, method):11} {n:4} samples  robust {store.entries[0].robust_acc:6.1%}"
                  f"  {results[kind][method][1]:8.1f} s", flush=True)

    print(f"\nrobust accuracy at eps {format_eps(args.eps)}, first N digits test samples, device {device}, "
          f"{torch.get_num_threads()} threads; budgets: PGD-10 alpha 2/255, APGD-CE and AutoAttack "
          f"{args.iterations} iterations, Square {args.queries} queries\n")
    print("| model | attack | N | robust acc | wall s |")
    print("|---|---|---:|---:|---:|")
    for kind in kinds:
        runs = results[kind]
        clean = next(iter(runs.values()))[0]
        print(f"| {kind.upper()} | clean | {args.samples} | {clean.clean_acc:.1%} | |")
        for method, (store, seconds) in runs.items():
            print(f"| {kind.upper()} | {LABELS.get(method, method)} | {store.n_samples} | "
                  f"{store.entries[0].robust_acc:.1%} | {seconds:.1f} |")
        for n in sorted({args.samples, few}, reverse=True):
            used = [m for m, (st, _) in runs.items() if st.n_samples >= n]
            worst = _worst(runs, used, n)
            print(f"| {kind.upper()} | worst case ({', '.join(LABELS.get(m, m) for m in used)}) | {n} | "
                  f"{worst.robust_acc:.1%} | {sum(runs[m][1] for m in used):.1f} |")
    for kind in kinds:
        runs = results[kind]
        if "pgd" not in runs:
            continue
        for n in sorted({args.samples, few}, reverse=True):
            used = [m for m, (st, _) in runs.items() if st.n_samples >= n]
            pgd = float((runs["pgd"][0].entries[0].pred[:n] == runs["pgd"][0].labels[:n]).double().mean())
            worst = _worst(runs, used, n)
            breakers: dict[str, int] = {}
            for b in worst.broken_by:
                breakers[b or "robust"] = breakers.get(b or "robust", 0) + 1
            print(f"\n{kind.upper()}, first {n} samples: PGD-10 leaves {pgd:.1%} correct, the worst case over "
                  f"{', '.join(LABELS.get(m, m) for m in used)} {worst.robust_acc:.1%}: "
                  + (f"PGD-10 overstates robust accuracy by {pgd - worst.robust_acc:.1%} points"
                     if pgd > worst.robust_acc else "PGD-10 does not overstate it")
                  + "; first broken by: " + ", ".join(f"{k} {v}" for k, v in sorted(breakers.items())))


def _worst(runs: dict, methods: list[str], n: int):
    """The worst case over `methods` on the first n samples (every run attacked at least n)."""
    entries = []
    for m in methods:
        e = runs[m][0].entries[0]
        entries.append(replace(e, method=m, adv=e.adv[:n], pred=e.pred[:n], linf=e.linf[:n],
                               broken_by=e.broken_by[:n] if e.broken_by else None))
    store = runs[methods[0]][0]
    return worst_case(entries, store.labels[:n], store.clean_pred[:n])[0]


if __name__ == "__main__":
    main()
