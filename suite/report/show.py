"""What each command prints: a library result shown as tables on the suite's console (uncut
at any width, see suite.report.layout), its figure written beside it. Reads results, computes
nothing; `console` is there for tests and other callers that print elsewhere."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from suite.progress import console as CONSOLE
from suite.report.figures import cka_figure, clean_adv_lines, robustness_curves, save_figure
from suite.report.layout import print_line, print_table
from suite.report.terminal import print_report
from suite.report.tables import (budgets_table, check_table, checks_table, cka_tables, clean_adv_tables, datasets_table,
                                 demo_table, robustness_table, training_table)
from suite.results.attacks import clean_adv_stem, robustness_notes
from suite.results.cka import CKAResult


def show_cka(result: CKAResult, path: Path | None, title: str, console: Console = CONSOLE) -> Path | None:
    """Print a CKA result's tables; write its figure beside `path` (None: no figure)."""
    for table in cka_tables(result, title, width=console.width):
        print_table(console, table)
    return save_figure(cka_figure(result, title), path.with_suffix(".png"))[0] if path is not None else None


def show_clean_adv(runs, title: str, console: Console = CONSOLE) -> Path:
    """Print the per-layer clean-vs-adversarial CKA of every eps; write its figure beside the
    results (their common name without the -eps part, .png)."""
    for table in clean_adv_tables(runs, title, width=console.width):
        print_table(console, table)
    path = runs[0].path.with_name(clean_adv_stem(runs[0].path) + ".png")
    return save_figure(clean_adv_lines([r.result for r in runs], title), path)[0]


def show_cka_runs(runs, console: Console = CONSOLE) -> None:
    """`suite cka`: one comparison (or one per eps for clean adv), its tables, files and figure."""
    first = runs[0]
    if first.result.compare == "clean-adv":
        figure = show_clean_adv(runs, f"clean vs adversarial CKA: {first.label_a}", console)
        print_line(console, "results: " + ", ".join(str(r.path) for r in runs))
    else:
        title = f"CKA {first.result.compare}: {first.label_a}"
        title += f" vs {first.label_b}" if first.label_b != first.label_a else ""
        figure = show_cka(first.result, first.path, title, console)
        print_line(console, f"result: {first.path}")
    print_line(console, f"figure: {figure}")


def show_attack(run, label: str, console: Console = CONSOLE) -> Path:
    """Print an attack run's budgets, robustness and checks tables; write its robustness curve."""
    rows = run.store.summary()
    config = run.store.config
    if config.get("budgets"):
        print_table(console, budgets_table(config, f"attack budgets: {label}"))
    free = [a["name"] for a in config.get("attacks", []) if a.get("gradient_free")]
    if free:
        print_line(console, f"{', '.join(free)}: gradient-free, queries the target itself; --grad and "
                            f"--attack-surrogate do not apply to it")
    print_table(console, robustness_table(rows, f"robustness: {label}", " ".join(robustness_notes(config)) or None))
    print_table(console, checks_table(run.checks, f"sanity checks: {label}"))
    return save_figure(robustness_curves([(label, rows)], f"robustness: {label}"), run.path.with_suffix(".png"))[0]


def show_attack_run(run, label: str, console: Console = CONSOLE) -> None:
    """`suite attack`: the attack's tables, then where its store and figure are."""
    figure = show_attack(run, label, console)
    print_line(console, f"store: {run.path}")
    print_line(console, f"figure: {figure}")


def show_training(result, console: Console = CONSOLE) -> None:
    """`suite train`: one row per epoch, then the checkpoint and the time it took."""
    print_table(console, training_table(result.metrics, f"training: {result.checkpoint.name}"))
    print_line(console, f"checkpoint: {result.checkpoint}  ({result.seconds:.1f} s)")


def show_demo(summary, console: Console = CONSOLE) -> None:
    """`suite demo`: the trained models, every CKA and attack result, and the files written."""
    c = summary.config
    title = (f"demo: {c.data.name}, {c.model.arch} twins (width {c.model.width}, T={c.model.timesteps}, "
             f"{c.optim.epochs} epochs)")
    print_table(console, demo_table(summary.trained, title))
    print_line(console, "checkpoints:")
    for kind, result in summary.trained.items():
        print_line(console, f"  {kind.upper()}: {result.checkpoint}")
    figures = [show_cka(run.result, run.path, f"CKA {label}", console) for label, run in summary.cka.items()]
    figures += [show_attack(run, label, console) for label, run in summary.attacks.items()]
    figures += [show_clean_adv(runs, f"clean vs adv CKA: {label}", console)
                for label, runs in summary.clean_adv.items()]
    print_line(console, "figures:")
    for figure in figures:
        print_line(console, f"  {figure}")
    print_line(console, f"demo finished in {summary.seconds:.0f} s; files under "
               + ", ".join(str(p) for p in summary.folders.values() if p.exists()))
    print_line(console, f"report: {summary.page}")


def show_experiment(run, console: Console = CONSOLE) -> None:
    """`suite experiment`: each finding sentence (numbers, the paper's claim, the verdict),
    then the findings file, the page and the time."""
    print_line(console, f"findings of {run.experiment.recipe}:")
    for finding in run.experiment.findings:
        print_line(console, f"- {finding.sentence}")
    print_line(console, f"findings file: {run.path}")
    breakdown = getattr(run, "seconds_by_step", {}) or {}
    if breakdown:
        spent = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(breakdown.items(), key=lambda kv: -kv[1]) if v >= 0.5)
        print_line(console, f"time: {spent}")
    print_line(console, f"done in {run.seconds:.0f} s; {len(run.trained)} model(s) trained")
    print_line(console, f"report page: {run.page}")


def show_report(report, console: Console = CONSOLE) -> None:
    """`suite report`: every section and the files that could not be read, then the figure
    files and the page written."""
    print_report(console, report.sections, report.collection.problems)
    if report.figures:
        print_line(console, "figures:")
        for figure in report.figures:
            print_line(console, f"  {figure}")
    if report.page is not None:
        print_line(console, f"page: {report.page}")


def show_datasets(rows: list[dict], root: Path, console: Console = CONSOLE) -> None:
    """`suite data list`: every dataset; folders are relative to `root`, named first."""
    print_line(console, f"datasets under {root}")
    print_table(console, datasets_table(rows))


def show_check(check, name: str, console: Console = CONSOLE) -> None:
    """`suite data check`: the corrupt files (the ones to replace), then the missing ones, by
    their paths inside the dataset folder, which is named first."""
    if not check.problems:
        print_line(console, f"{name}: all {check.files} files under {check.folder} read cleanly")
        return
    print_line(console, f"{name}: {len(check.corrupt)} corrupt, {len(check.missing)} missing under {check.folder}")
    print_table(console, check_table(check.corrupt, check.missing))
