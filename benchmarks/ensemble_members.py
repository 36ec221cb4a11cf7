"""Which members the SNN surrogate ensemble should hold: every candidate member run exactly as the
ensemble runs it, then chosen greedily, sample by sample.

The ensemble (suite.attacks.composite) runs each gradient member on the whole batch with its own
seed (`member_seed`), so what a member breaks does not depend on the others, and the ensemble
breaks the union of what its members break (then Square on the survivors). That makes the choice
of members a set-cover question this script answers from measurements: run every candidate once,
record which samples it breaks and how long it took, then add members greedily, each time the one
that breaks the most samples no earlier member broke (summed over the eps values; ties go to the
faster one).

The samples are held out from the strength table (benchmarks/attack_strength.py attacks the
first 256 test samples; this script attacks the test samples from --offset 256 on, 194 of the
450 digits test samples), so the presets are not chosen on the samples they are judged on.

Candidates (`--candidates` to change them), each METHOD/GRADIENT as in the presets:
SA-PGD and APGD-CE through every SNN gradient mode, APGD-CE through bptt with other attacker
surrogate shapes and widths, APGD-T through the strongest modes with 3 and 9 target classes,
and Square at 1000 and 5000 queries (run on the whole batch here; in the ensemble it only sees
the survivors). Iterations: --iterations (100, AutoAttack's standard).

    .venv/bin/python benchmarks/ensemble_members.py [--offset 256] [--eps 4/255,8/255] [--threads 1]
        [--cache ensemble_members.json] [--runs runs]

The cache (JSON) keeps each finished candidate's broken samples and seconds, so an interrupted
run continues where it stopped; a cache made for other samples, eps or iterations is refused.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from attack_strength import checkpoint, machine_options, start
from suite.attacks import AttackConfig, predict
from suite.attacks.composite import Member, member_seed, parse_member
from suite.attacks.methods import Budget, craft
from suite.attacks.plan import Attackers
from suite.attacks.run import _batch
from suite.checkpoint import load_model
from suite.data import load_dataset
from suite.results.attacks import format_eps
from suite.values import parse_fractions, parse_list

DEFAULT_CANDIDATES = (
    "sa-pgd/assg", "sa-pgd/hart", "sa-pgd/bptt", "sa-pgd/rga",
    "apgd-ce/assg", "apgd-ce/hart", "apgd-ce/bptt", "apgd-ce/rga", "apgd-ce/pdsg", "apgd-ce/bptr",
    "apgd-ce/bptt:pcw:0.5", "apgd-ce/bptt:pcw:2", "apgd-ce/bptt:exp:1", "apgd-ce/bptt:rect:1",
    "apgd-ce/bptt:fast_sigmoid",
    "apgd-t/assg@3", "apgd-t/bptt@3", "apgd-t/hart@3", "apgd-t/assg@9", "apgd-t/bptt@9", "apgd-t/hart@9",
    "square@1000", "square@5000",
)


@dataclass(frozen=True)
class Candidate:
    """A member as the ensemble runs it (its label, which seeds it, is METHOD/GRADIENT) with a
    budget: the target classes of APGD-T or the queries of Square ("@N" in its name)."""

    name: str
    member: Member
    targets: int = 9
    queries: int = 5000


def candidate(name: str) -> Candidate:
    spec, _, n = name.partition("@")
    if spec == "square":
        return Candidate(name, Member("square", "square"), queries=int(n or 5000))
    method, mode, surrogate = parse_member(spec)
    return Candidate(name, Member(spec, method, mode, surrogate, whole_batch=True), targets=int(n or 9))


def run_candidate(c: Candidate, attackers: Attackers, batches, eps: float, config: AttackConfig) -> tuple[list[bool], float]:
    """Which samples candidate `c` breaks at `eps` (a sample the model already gets wrong counts
    as broken, as in the ensemble) and its wall seconds."""
    budget = replace(Budget.of(config), target_classes=c.targets, queries=c.queries)
    broken: list[bool] = []
    t0 = time.perf_counter()
    for start, x, y in batches:
        a = craft(attackers.for_member(c.member), c.member.method, x, y, eps, budget,
                  member_seed(config.seed, "ensemble", c.member, eps, start), n_classes=10)
        broken += (predict(attackers.model, a) != y).tolist()
    return broken, time.perf_counter() - t0


def greedy(names: list[str], broken: dict, seconds: dict, eps_values: list[float]) -> list[tuple[str, list[int], float]]:
    """Members in greedy order: (name, newly broken per eps, seconds over the eps values); stops
    when no candidate breaks a sample the chosen ones left."""
    left = {e: set(range(len(broken[names[0], e]))) for e in eps_values}
    order, pool = [], list(names)
    while pool:
        def gain(n):
            return sum(len({i for i in left[e] if broken[n, e][i]}) for e in eps_values)
        best = max(pool, key=lambda n: (gain(n), -sum(seconds[n, e] for e in eps_values)))
        if gain(best) == 0:
            break
        new = [len({i for i in left[e] if broken[best, e][i]}) for e in eps_values]
        for e in eps_values:
            left[e] -= {i for i in left[e] if broken[best, e][i]}
        order.append((best, new, sum(seconds[best, e] for e in eps_values)))
        pool.remove(best)
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offset", type=int, default=256, help="first test sample attacked")
    parser.add_argument("--samples", type=int, default=0, help="how many (0: every one from --offset on)")
    parser.add_argument("--eps", default="4/255,8/255")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES))
    parser.add_argument("--cache", type=Path, default=Path("ensemble_members.json"))
    machine_options(parser)
    args = parser.parse_args()
    device = start(args)
    eps_values = parse_fractions(args.eps, "--eps")
    names = parse_list(args.candidates, "--candidates")
    path = checkpoint("snn", args.runs, str(device))
    model, ckpt = load_model(path, device)
    data = load_dataset(ckpt.data_spec, "datasets", "test")
    stop = len(data) if not args.samples else args.offset + args.samples
    config = AttackConfig(methods=("ensemble",), eps=tuple(eps_values), iterations=args.iterations,
                          batch_size=args.batch_size, samples=None)
    batches = []
    for first in range(args.offset, stop, args.batch_size):
        x, y = _batch(data, range(first, min(first + args.batch_size, stop)))
        batches.append((first, x.to(device), y.to(device)))
    n = stop - args.offset
    key = {"offset": args.offset, "n": n, "eps": eps_values, "iterations": args.iterations,
           "seed": config.seed, "threads": torch.get_num_threads(), "checkpoint": str(ckpt.provenance.get("date"))}
    cache = json.loads(args.cache.read_text()) if args.cache.is_file() else {"key": key, "runs": {}}
    if cache["key"] != key:
        raise SystemExit(f"{args.cache} was made for {cache['key']}, not {key}; give another --cache")
    attackers = Attackers(model, config, None, device)
    broken, seconds = {}, {}
    for name in names:
        c = candidate(name)
        for eps in eps_values:
            k = f"{name} {eps!r}"
            if k not in cache["runs"]:
                b, s = run_candidate(c, attackers, batches, eps, config)
                cache["runs"][k] = {"broken": b, "seconds": s}
                args.cache.write_text(json.dumps(cache))
            broken[name, eps], seconds[name, eps] = cache["runs"][k]["broken"], cache["runs"][k]["seconds"]
            print(f"{name:28} eps {format_eps(eps):6} robust {1 - sum(broken[name, eps]) / n:6.1%} "
                  f"{seconds[name, eps]:7.1f} s", flush=True)

    clean_wrong = [(predict(model, x) != y).tolist() for _, x, y in batches]
    print(f"\nSNN {path}: test samples {args.offset}..{stop - 1} (n={n}), "
          f"clean accuracy {1 - sum(map(sum, clean_wrong)) / n:.1%}, {torch.get_num_threads()} threads, "
          f"{args.iterations} iterations\n")
    heads = " | ".join(f"eps {format_eps(e)} robust | s" for e in eps_values)
    print(f"| candidate | {heads} |\n|---|" + "---:|---:|" * len(eps_values))
    for name in names:
        cells = " | ".join(f"{1 - sum(broken[name, e]) / n:.1%} | {seconds[name, e]:.0f}" for e in eps_values)
        print(f"| {name} | {cells} |")
    for title, pool in (("gradient members", [m for m in names if not m.startswith("square")]),
                        ("gradient members and Square (whole batch)", names)):
        print(f"\nGreedy order over {title}: newly broken samples per eps, robust accuracy left, seconds\n")
        print("| # | member | " + " | ".join(f"new {format_eps(e)} | left {format_eps(e)}" for e in eps_values)
              + " | s | total s |\n|---:|---|" + "---:|---:|" * len(eps_values) + "---:|---:|")
        left = {e: n for e in eps_values}
        total = 0.0
        for k, (name, new, s) in enumerate(greedy(pool, broken, seconds, eps_values), 1):
            total += s
            cells = []
            for e, g in zip(eps_values, new):
                left[e] -= g
                cells.append(f"{g} | {left[e] / n:.1%}")
            print(f"| {k} | {name} | {' | '.join(cells)} | {s:.0f} | {total:.0f} |")


if __name__ == "__main__":
    main()
