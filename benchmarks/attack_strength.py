"""Robust accuracy of the demo's SNN and ANN under FGSM, PGD-10, APGD-CE, Square and AutoAttack,
and the worst case per sample over all of them, each with its wall time.

The question it answers: does the number a quick attack gives (PGD-10, the demo's) overstate a
model's robustness, and by how much, once the field's reference attacks have had their turn?

Models: the demo's twins (suite.demo.DEMO: ResNet-20, width 0.5, T=4, digits at 16x16, 8 epochs),
trained here through `suite.workflows.train_one` unless a finished checkpoint of the same name is
in --runs. Attacks: the first --samples test samples, eps 8/255, BPTT with the training surrogate
for the SNN, budgets as the CLI's defaults (PGD-10 with alpha 2/255; APGD-CE 100 iterations;
Square 5000 queries; AutoAttack standard: APGD-CE, APGD-T, FAB-T with 100 iterations and 9
targets, Square 5000 queries). Each method runs on its own (`run_attacks`), so its wall time is
its own; the worst case combines their per-sample results (`suite.attacks.worst.worst_case`).

    .venv/bin/python benchmarks/attack_strength.py [--samples 256] [--runs runs] [--threads 2]
        [--methods fgsm,pgd,apgd-ce,square,autoattack] [--iterations 100] [--queries 5000]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from suite.attacks import AttackConfig, parse_methods, run_attacks
from suite.attacks.worst import worst_case
from suite.checkpoint import load_model
from suite.config import select_device
from suite.data import load_dataset
from suite.demo import DEMO
from suite.errors import SuiteError
from suite.results.attacks import format_eps
from suite.workflows import train_one

LABELS = {"fgsm": "FGSM", "pgd": "PGD-10", "apgd-ce": "APGD-CE", "square": "Square", "autoattack": "AutoAttack"}


def checkpoint(kind: str, runs: Path, device: str) -> Path:
    """The demo's checkpoint of `kind`: reused when finished, else trained with the demo's settings."""
    settings = replace(DEMO, kind=kind)
    path = runs / f"{settings.run_name()}.pt"
    if path.is_file():
        try:
            _, ckpt = load_model(path, "cpu")
            if ckpt.epoch >= settings.epochs:
                print(f"{kind}: reusing {path}", flush=True)
                return path
        except SuiteError:
            pass
    t0 = time.perf_counter()
    result = train_one(settings, device=device, out=runs, show_progress=False)
    print(f"{kind}: trained {result.checkpoint} in {time.perf_counter() - t0:.0f} s "
          f"(test accuracy {result.test_accuracy:.1%})", flush=True)
    return result.checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
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
    methods = parse_methods(args.methods)

    rows = []
    for kind in args.kinds.split(","):
        model, ckpt = load_model(checkpoint(kind, args.runs, str(device)), device)
        data = load_dataset(ckpt.data_spec, "datasets", "test")
        entries, stores = [], {}
        for method in methods:
            cfg = AttackConfig(methods=(method,), eps=(args.eps,), steps=10, alpha=2 / 255,
                               iterations=args.iterations, queries=args.queries, samples=args.samples,
                               batch_size=args.batch_size, seed=0)
            t0 = time.perf_counter()
            store = run_attacks(model, data, cfg, device=device, keep_clean=False)
            seconds = time.perf_counter() - t0
            stores[method] = store
            entries.append(store.entries[0])
            rows.append((kind, LABELS.get(method, method), store.entries[0].robust_acc, seconds, store.clean_acc))
            print(f"{kind:4} {LABELS.get(method, method):11} robust {store.entries[0].robust_acc:6.1%}  "
                  f"{seconds:8.1f} s", flush=True)
        any_store = next(iter(stores.values()))
        (worst,) = worst_case(entries, any_store.labels, any_store.clean_pred)
        breakers = {}
        for b in worst.broken_by:
            breakers[b or "robust"] = breakers.get(b or "robust", 0) + 1
        rows.append((kind, "worst case", worst.robust_acc, sum(r[3] for r in rows if r[0] == kind), any_store.clean_acc))
        print(f"{kind:4} {'worst case':11} robust {worst.robust_acc:6.1%}   first broken by: "
              + ", ".join(f"{k} {v}" for k, v in sorted(breakers.items())), flush=True)

    print(f"\nrobust accuracy at eps {format_eps(args.eps)} on the first {args.samples} digits test samples "
          f"(device {device}, {torch.get_num_threads()} threads)\n")
    print("| model | clean | attack | robust acc | wall s |")
    print("|---|---:|---|---:|---:|")
    for kind, label, acc, seconds, clean in rows:
        print(f"| {kind.upper()} | {clean:.1%} | {label} | {acc:.1%} | {seconds:.1f} |")
    for kind in args.kinds.split(","):
        by = {label: acc for k, label, acc, _, _ in rows if k == kind}
        if "PGD-10" in by:
            gap = by["PGD-10"] - by["worst case"]
            print(f"\n{kind.upper()}: PGD-10 leaves {by['PGD-10']:.1%} correct, the worst case {by['worst case']:.1%}: "
                  + (f"PGD-10 overstates robust accuracy by {gap:.1%} (points)" if gap > 0
                     else "PGD-10 does not overstate it"))


if __name__ == "__main__":
    main()
