"""The event threat model's attacks side by side (issue 30): on the digits-dvs SNN and its ANN
twin (the demo's settings: ResNet-20, width 0.5, T=4, 16x16, 8 epochs; trained here unless a
finished checkpoint of the same name is in --runs), the first --samples test samples:

- per attack (event-pgd, event-sparse, event-retime, event-random, event-random-retime) and
  budget: robust accuracy, success (broken / correct clean), wall time per sample;
- event-sparse: the median events changed per broken sample (at the largest budget), beside
  event-pgd's on the same samples;
- rounded continuous PGD at the same budgets: PGD on real-valued counts (the gradient taken at
  the continuous iterate), rounded and cut to the budget only at the end, the way a frame-space
  attack is rounded after the fact; event-pgd rounds at every step (SPAA's non_prob_fool).

Verdict lines are read from the numbers just measured: every attack below its random floor at
every non-zero budget.

    .venv/bin/python benchmarks/event_attack_strength.py [--samples 256] [--events 0,10,50,200]
        [--kinds snn,ann] [--threads 1] [--runs runs]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for benchmarks/
from benchmarks.attack_strength import checkpoint, machine_options, start  # noqa: E402
from suite.attacks import AttackConfig, run_attacks  # noqa: E402
from suite.attacks.event_checks import FLOOR as ATTACK_FLOOR  # noqa: E402
from suite.attacks.event_methods import EVENT_METHODS as ATTACKS  # noqa: E402
from suite.attacks.event_methods import Counts, Objective, project_l0  # noqa: E402
from suite.attacks.event_run import recordings  # noqa: E402
from suite.attacks.gradients import attack_model  # noqa: E402
from suite.checkpoint import load_model  # noqa: E402
from suite.data import load_dataset  # noqa: E402
from suite.values import parse_ints, parse_list  # noqa: E402

FLOOR = {**ATTACK_FLOOR, "rounded continuous PGD": "event-random"}  # each row's random floor


def continuous_pgd(model, data, n: int, budgets: list[int], steps: int, grad: str, batch: int) -> dict[int, float]:
    """Rounded continuous PGD (module docstring): budget -> robust accuracy."""
    attacker = attack_model(model, grad)
    correct = {k: 0 for k in budgets}
    for start in range(0, n, batch):
        rows = range(start, min(start + batch, n))
        recs = recordings(data, rows)
        y = torch.tensor([int(data[i][1]) for i in rows])
        counts = Counts.of(recs, "cpu")
        obj = Objective(attacker, counts.config, y)
        C0 = counts.clean
        for k in budgets:
            delta = torch.zeros_like(C0)
            for _ in range(steps if k else 0):
                g, _, _ = obj.grad(C0 + delta, "ce")
                scale = g.flatten(1).abs().amax(1).clamp(min=1e-30).view(-1, 1, 1, 1, 1)
                delta = project_l0(torch.clamp(delta + g / scale, counts.low - C0, counts.high - C0), k)
            final = project_l0(delta, k).round()
            with torch.no_grad():
                correct[k] += int((~obj.fooled(C0 + final)).sum())
    return {k: v / n for k, v in correct.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--events", default="0,10,50,200")
    parser.add_argument("--kinds", default="snn,ann")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    machine_options(parser)
    args = parser.parse_args()
    device = start(args)
    budgets = parse_ints(args.events, "--events")
    for kind in parse_list(args.kinds, "--kinds"):
        model, ckpt = load_model(checkpoint(kind, args.runs, str(device), "digits-dvs"), device)
        data = load_dataset(ckpt.data_spec, "datasets", "test")
        grad = "assg" if kind == "snn" else "bptt"
        rows: dict[str, dict[int, float]] = {}
        seconds: dict[str, float] = {}
        stores = {}
        for attack in parse_list(args.attacks, "--attacks"):
            config = AttackConfig(methods=(attack,), threat="events", events=tuple(budgets), grad=grad,
                                  samples=args.samples, batch_size=args.batch_size, steps=args.steps, keep_clean=False)
            t0 = time.perf_counter()
            store = run_attacks(model, data, config, device=device)
            seconds[attack] = time.perf_counter() - t0
            stores[attack] = store
            rows[attack] = {int(e.eps): e.robust_acc for e in store.for_method(attack)}
            print(f"{kind} {attack:20} " + "  ".join(f"{k}: {v:6.1%}" for k, v in rows[attack].items())
                  + f"  {seconds[attack] / args.samples * 1000:7.1f} ms/sample", flush=True)
        t0 = time.perf_counter()
        rows["rounded continuous PGD"] = continuous_pgd(model, data, args.samples, budgets, args.steps, grad,
                                                        args.batch_size)
        seconds["rounded continuous PGD"] = time.perf_counter() - t0
        any_store = next(iter(stores.values()))
        clean = float((any_store.clean_pred == any_store.labels).double().mean())
        print(f"\n{kind.upper()}: first {args.samples} digits-dvs test samples, clean accuracy {clean:.1%}, "
              f"{torch.get_num_threads()} threads\n")
        print("| attack | " + " | ".join(f"{k} events robust (success)" for k in budgets if k) + " | ms/sample |")
        print("|---|" + "---:|" * (len([k for k in budgets if k]) + 1))
        for name, accs in rows.items():
            cells = [f"{accs[k]:.1%} ({1 - accs[k] / clean:.0%})" if clean else f"{accs[k]:.1%}" for k in budgets if k]
            print(f"| {name} | " + " | ".join(cells) + f" | {seconds[name] / args.samples * 1000:.0f} |")
        if "event-sparse" in stores and "event-pgd" in stores:
            top = max(budgets)
            s, p = stores["event-sparse"].entry("event-sparse", top), stores["event-pgd"].entry("event-pgd", top)
            ok = any_store.clean_pred == any_store.labels
            broke = ok & (s.pred != any_store.labels)
            both = broke & (p.pred != any_store.labels)
            if bool(broke.any()):
                print(f"\nevent-sparse at {top} events: median {statistics.median(s.linf[broke].tolist()):g} events "
                      f"changed per broken sample ({int(broke.sum())} broken); on the {int(both.sum())} samples "
                      f"event-pgd also breaks: event-sparse {statistics.median(s.linf[both].tolist()) if both.any() else float('nan'):g}, "
                      f"event-pgd {statistics.median(p.linf[both].tolist()) if both.any() else float('nan'):g}")
        for name, floor in FLOOR.items():
            if name in rows and floor in rows:
                lost = [k for k in budgets if k and rows[name][k] >= rows[floor][k] and rows[floor][k] > 0]
                print(f"{kind.upper()} {name}: " + ("below its random floor at every non-zero budget" if not lost else
                                                   f"NOT below {floor} at {', '.join(map(str, lost))} events"))
        print()


if __name__ == "__main__":
    main()
