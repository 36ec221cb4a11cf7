"""The strength table: robust accuracy and wall time of every attack the suite has on the demo's
SNN and its ANN twin, side by side on the same samples, and the worst case over all of them.

The question it answers: which white-box attack finds an SNN's real weaknesses (leaves no more
samples correct than the gradient-free Square), how fast, and how far the surrogate ensemble
goes below APGD-CE through the training surrogate.

Models: the demo's twins (suite.demo.DEMO: ResNet-20, width 0.5, T=4, digits at 16x16, 8
epochs), trained here through `suite.train.train_one` unless a finished checkpoint of the same
name is in --runs. Attacks: the first --samples test samples at each --eps, every row run on
its own (`run_attacks`, one eps at a time, so its wall time is its own): FGSM, PGD-10 (alpha
2/255), APGD-CE (100 iterations) through bptt with the training surrogate and through every
other gradient mode, SA-PGD (100 iterations) through bptt and the mode given by --sapgd-grad,
Square (5000 queries), the ensemble (--budget), and the worst case per sample over every row.
The ANN has one exact gradient: its rows are FGSM, PGD-10, APGD-CE, SA-PGD, Square and the
ensemble. --repeat 2 runs the whole table twice and says whether every number repeated.

    .venv/bin/python benchmarks/attack_strength.py [--samples 256] [--eps 4/255,8/255] [--threads 1]
        [--rows fgsm,pgd,apgd-ce,...] [--budget quick] [--runs runs] [--repeat 1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from suite.attacks import AttackConfig, run_attacks
from suite.attacks.worst import worst_case
from suite.checkpoint import load_model
from suite.data import load_dataset
from suite.defaults import ATTACK_DEFAULT
from suite.demo import DEMO
from suite.device import select_device
from suite.errors import SuiteError
from suite.results.attacks import AttackEntry, format_eps
from suite.train import train_one
from suite.values import parse_fractions, parse_list
from suite.where import Where

SNN_MODES = ("bptr", "rga", "hart", "pdsg", "assg")


@dataclass(frozen=True)
class Row:
    """One row of the table: a method with a gradient mode (None: the run's default)."""

    label: str
    method: str
    grad: str = "bptt"
    white_box: bool = True  # a single white-box attack (candidate for "the strongest")


NAMES = {"fgsm": "FGSM", "pgd": "PGD-10", "apgd-ce": "APGD-CE", "sa-pgd": "SA-PGD", "square": "Square",
         "ensemble": "ensemble"}


def rows_for(kind: str, names: list[str]) -> list[Row]:
    """The table's rows for a model of `kind` among `names` (default, fgsm, pgd, apgd-ce,
    apgd-ce/MODE, sa-pgd, sa-pgd/MODE, square, ensemble); an SNN's APGD-CE and SA-PGD rows name
    their mode; `default` is what `suite attack` runs without --method."""
    rows = []
    for name in names:
        if name == "default":  # what `suite attack` runs without --method (AttackConfig.for_model)
            method, grad = ATTACK_DEFAULT[kind]
            rows.append(Row(f"default ({method}, {grad if kind == 'snn' else 'exact'})", "", ""))
            continue
        method, _, grad = name.partition("/")
        if kind == "ann" and grad:
            continue  # an ANN has one exact gradient: the modes coincide with bptt or do not apply
        grad = grad or "bptt"
        label = NAMES[method] + (f" ({grad})" if kind == "snn" and method in ("apgd-ce", "sa-pgd") else "")
        rows.append(Row(label, method, grad, white_box=method not in ("square", "ensemble")))
    return rows


def default_rows(sapgd_grad: str) -> list[str]:
    return ["fgsm", "pgd", "apgd-ce", *(f"apgd-ce/{m}" for m in SNN_MODES), "sa-pgd", f"sa-pgd/{sapgd_grad}",
            "square", "ensemble"]


def checkpoint(kind: str, runs: Path, device: str, dataset: str = "digits") -> Path:
    """The demo's checkpoint of `kind` on `dataset`: reused when finished, else trained with the
    demo's settings."""
    config = DEMO.train.variant(kind=kind, dataset=dataset)
    path = runs / f"{config.run_name()}.pt"
    if path.is_file():
        try:
            _, ckpt = load_model(path, "cpu")
            if ckpt.epoch >= config.optim.epochs:
                # training's float sums depend on the thread count: say what this checkpoint came from
                print(f"{kind}: reusing {path} (trained with {ckpt.provenance.get('threads', '?')} threads, "
                      f"test accuracy {ckpt.metrics[-1].get('test_acc', float('nan')):.1%})", flush=True)
                return path
        except SuiteError:
            pass
    t0 = time.perf_counter()
    result = train_one(config, Where(out=runs, device=device, show_progress=False))
    print(f"{kind}: trained {result.checkpoint} in {time.perf_counter() - t0:.0f} s "
          f"(test accuracy {result.test_accuracy:.1%})", flush=True)
    return result.checkpoint


def run_table(model, data, kind: str, rows: list[Row], eps_values: list[float], args, device) -> dict:
    """(row label, eps) -> (entry, seconds), and the worst case per eps under ("worst", eps)."""
    out = {}
    for eps in eps_values:
        entries = []
        for row in rows:
            cfg = AttackConfig(methods=(row.method,) if row.method else (), eps=(eps,),
                               grad=None if not row.method else row.grad if kind == "snn" else "bptt",
                               samples=args.samples, batch_size=args.batch_size, seed=0, keep_clean=False,
                               budget=args.budget)
            t0 = time.perf_counter()
            store = run_attacks(model, data, cfg, device=device)
            seconds = time.perf_counter() - t0
            entry = store.entries[0]
            out[row.label, eps] = (entry, seconds)
            entries.append(replace(entry, method=row.label))
            print(f"{kind:4} eps {format_eps(eps):6} {row.label:22} robust {entry.robust_acc:6.1%}  {seconds:8.1f} s",
                  flush=True)
        worst = worst_case(entries, store.labels, store.clean_pred)[0]
        out["worst", eps] = (worst, sum(out[r.label, eps][1] for r in rows))
        out["clean", eps] = (store.clean_acc, 0.0)
    return out


def print_table(kind: str, rows: list[Row], eps_values: list[float], table: dict, n: int) -> None:
    print(f"\n{kind.upper()}, first {n} digits test samples, clean accuracy {table['clean', eps_values[0]][0]:.1%}\n")
    head = " | ".join(f"eps {format_eps(e)} robust | wall s" for e in eps_values)
    print(f"| attack | {head} |")
    print("|---|" + "---:|---:|" * len(eps_values))
    for label in [r.label for r in rows] + ["worst"]:
        cells = " | ".join(f"{table[label, e][0].robust_acc:.1%} | {table[label, e][1]:.0f}" for e in eps_values)
        print(f"| {label if label != 'worst' else 'worst case (every row)'} | {cells} |")


def verdicts(kind: str, rows: list[Row], eps_values: list[float], table: dict) -> None:
    """The goals, read from the numbers just measured."""
    white = [r for r in rows if r.white_box]
    for eps in eps_values:
        if not white:  # e.g. --rows ensemble
            print(f"{kind.upper()} eps {format_eps(eps)}: no single white-box attack in --rows, so no verdict")
            continue
        best = min(white, key=lambda r: table[r.label, eps][0].robust_acc)
        acc, secs = table[best.label, eps][0].robust_acc, table[best.label, eps][1]
        line = f"{kind.upper()} eps {format_eps(eps)}: strongest single white-box attack {best.label} {acc:.1%} in {secs:.0f} s"
        if ("Square", eps) in table:
            sq, sq_s = table["Square", eps][0].robust_acc, table["Square", eps][1]
            line += (f"; Square {sq:.1%} in {sq_s:.0f} s: {'no more' if acc <= sq else 'MORE'} samples correct "
                     f"than Square, in {secs / sq_s:.2f} of its time")
        ref = next((r.label for r in rows if r.method == "apgd-ce" and r.grad == "bptt"), None)
        if ("ensemble", eps) in table and ref is not None:
            gap = table[ref, eps][0].robust_acc - table["ensemble", eps][0].robust_acc
            line += f"; ensemble {table['ensemble', eps][0].robust_acc:.1%}, {gap * 100:.1f} points below {ref}"
        print(line)


def machine_options(parser: argparse.ArgumentParser) -> None:
    """The options every attack benchmark shares: where checkpoints live, batch size, threads, device."""
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="auto")


def start(args: argparse.Namespace) -> torch.device:
    """Set the thread count (training's and an attack's float sums depend on it) and pick the device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return select_device(args.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--eps", default="4/255,8/255")
    parser.add_argument("--rows", default=None, help="comma list (default: every attack; see the docstring)")
    parser.add_argument("--sapgd-grad", default="assg")
    parser.add_argument("--budget", default="quick")
    parser.add_argument("--kinds", default="snn,ann")
    parser.add_argument("--repeat", type=int, default=1)
    machine_options(parser)
    args = parser.parse_args()
    device = start(args)
    eps_values = parse_fractions(args.eps, "--eps")
    names = parse_list(args.rows, "--rows") if args.rows else default_rows(args.sapgd_grad)
    for kind in parse_list(args.kinds, "--kinds"):
        model, ckpt = load_model(checkpoint(kind, args.runs, str(device)), device)
        data = load_dataset(ckpt.data_spec, "datasets", "test")
        rows = rows_for(kind, names)
        tables = [run_table(model, data, kind, rows, eps_values, args, device) for _ in range(args.repeat)]
        print(f"\n{kind.upper()}: device {device}, {torch.get_num_threads()} threads, budget {args.budget}")
        print_table(kind, rows, eps_values, tables[0], args.samples)
        verdicts(kind, rows, eps_values, tables[0])
        if args.repeat > 1:
            same = all(torch.equal(t[k][0].pred, tables[0][k][0].pred) for t in tables[1:] for k in tables[0]
                       if isinstance(tables[0][k][0], AttackEntry))
            print(f"{kind.upper()}: {args.repeat} runs, every prediction {'repeated' if same else 'did NOT repeat'}")


if __name__ == "__main__":
    main()
