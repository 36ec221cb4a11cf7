"""Rich tables of results: CKA matrices and highlights, robustness and sanity checks, training
runs, the demo's summary, the dataset list and a dataset check.

Tables follow suite.report.layout: numbers and names never wrap, paths fold; grids wider than
the console (`width`) are split into column blocks. Nothing here computes a result."""

from __future__ import annotations

import math

import torch
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from suite.results.attacks import at_budget, format_eps
from suite.report.layout import TEXT, VALUE, column_blocks
from suite.results.cka import CKAResult

MAX_COLUMNS = 24  # wider matrices are summarised (highlights), not drawn cell by cell


def cka_cell(value: float) -> Text:
    """A CKA value coloured from dark (0) to bright (1); NaN shown as such."""
    if not math.isfinite(value):
        return Text("nan", style="red")
    level = int(round(max(0.0, min(1.0, value)) * 5))
    styles = ["grey35", "blue", "cyan", "green", "yellow", "bold bright_white on dark_orange"]
    return Text(f"{value:.2f}", style=styles[level])


def matrix_tables(matrix: torch.Tensor, rows: list[str], cols: list[str], title: str, width: int) -> list[Table]:
    """A heatmap-like grid of a 2-D matrix: rows named "A<i> name", columns numbered B<j> (the
    caption names them), in column blocks that fit `width`."""
    cells = [[cka_cell(v) for v in row] for row in matrix.tolist()]
    return column_blocks(title, "A \\ B", [f"A{i} {r}" for i, r in enumerate(rows)],
                         [f"B{j}" for j in range(len(cols))], cells, width,
                         caption=lambda a, b: "columns: " + ", ".join(f"B{j}={cols[j]}" for j in range(a, b)))


def cka_tables(result: CKAResult, title: str = "CKA", width: int = 80) -> list[Table]:
    """Tables for a CKA result: the matrix (or per-layer time matrices), then highlights."""
    if result.compare == "time":
        return [time_summary(result, title)]
    out = []
    if len(result.layers_b) <= MAX_COLUMNS:
        out += matrix_tables(result.matrix, result.layers_a, result.layers_b,
                             f"{title} ({result.n_samples} samples)", width)
    out.append(highlights(result, title))
    return out


def highlights(result: CKAResult, title: str) -> Table:
    """The matching-layer diagonal (when layer names match) and the most and least similar pairs."""
    table = Table(title=f"{title}: highlights")
    for col in ("what", "layer A", "layer B"):
        table.add_column(col, **VALUE)
    table.add_column("CKA", justify="right", **VALUE)
    diag = result.diagonal() if result.compare != "layers" else None
    for name, value in diag or []:
        table.add_row("same layer", name, name, cka_cell(value))
    m = result.matrix.clone()
    if result.compare == "layers":  # the diagonal is 1 by definition: leave it out
        m.fill_diagonal_(float("nan"))
    flat = torch.nan_to_num(m, nan=-1.0).flatten()
    if flat.numel():
        best = int(flat.argmax())
        table.add_row("most similar", result.layers_a[best // m.shape[1]], result.layers_b[best % m.shape[1]],
                      cka_cell(float(m.flatten()[best])))
        worst_vals = torch.nan_to_num(m, nan=2.0).flatten()
        worst = int(worst_vals.argmin())
        table.add_row("least similar", result.layers_a[worst // m.shape[1]], result.layers_b[worst % m.shape[1]],
                      cka_cell(float(m.flatten()[worst])))
    return table


def time_summary(result: CKAResult, title: str) -> Table:
    """Temporal CKA per layer: CKA of first vs last time step and mean over distinct step pairs."""
    T = result.matrix.shape[-1]
    table = Table(title=f"{title}: CKA between time steps ({result.n_samples} samples, T={T})")
    table.add_column("layer", **VALUE)
    table.add_column("t0 vs t1", justify="right", **VALUE)
    if T > 2:
        table.add_column(f"t0 vs t{T - 1}", justify="right", **VALUE)
    table.add_column("mean t != t'", justify="right", **VALUE)
    off = ~torch.eye(T, dtype=torch.bool)
    for name, mat in zip(result.layers_a, result.matrix):
        mean_off = float(mat[off].nanmean()) if T > 1 else float("nan")
        cells = [cka_cell(float(mat[0, min(1, T - 1)]))] + ([cka_cell(float(mat[0, T - 1]))] if T > 2 else [])
        table.add_row(name, *cells, cka_cell(mean_off))
    return table


def robustness_table(rows: list[dict], title: str = "robustness", caption: str | None = None) -> Table:
    """Clean and robust accuracy per (method, eps), with the measured perturbation size (L-inf, or
    events changed under --threat events); `caption` under it (what the numbers are:
    suite.results.attacks.robustness_notes)."""
    events = bool(rows) and rows[0].get("threat") == "events"
    # no vertical rules and one space between columns, so that attack names like
    # autoattack@fast_sigmoid fit 80 columns: names and numbers are never cut, the gradient
    # description (last) folds instead
    samples = sorted({r["n_samples"] for r in rows})
    title += f" ({', '.join(map(str, samples))} samples)" if samples else ""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1),
                  caption=escape(caption) if caption else None, caption_justify="left",
                  min_width=max(map(len, caption.split())) if caption else None)  # its file name on one line
    table.add_column("method", no_wrap=True, min_width=max([len(r["method"]) for r in rows] + [6]))
    # events: also the mean share of each recording's events changed
    size = ("mean\nevents", "max\nevents", "% of\nrec.") if events else ("mean\nL-inf", "max\nL-inf")
    for col in ("budget" if events else "eps", "clean\nacc", "robust\nacc", *size):
        table.add_column(col, justify="right", no_wrap=True, min_width=5 if col == "eps" else 6)
    grads = []
    for r in rows:
        surrogate = r.get("attack_surrogate")
        named = "@" in r["method"]  # the surrogate is already in the attack's name
        grads.append(r["grad"] + (f" ({surrogate})" if surrogate not in (None, "?", "", "-") and not named else ""))
    table.add_column("grad", overflow="fold", min_width=max([len(w) for g in grads for w in g.split()] + [4]))
    for r, grad in zip(rows, grads):
        size = (f"{r['linf_mean']:.1f}", f"{r['linf_max']:.0f}", _share(r.get("fraction_mean"))) if events else \
            (f"{r['linf_mean']:.4f}", f"{r['linf_max']:.4f}")
        table.add_row(r["method"], r["eps_label"], f"{r['clean_acc']:.1%}", f"{r['robust_acc']:.1%}", *size, grad)
    return table


def _share(fraction: float | None) -> str:
    """A fraction of a recording's events as a percentage ("-" where a store does not record it)."""
    return "-" if fraction is None else f"{fraction:.1%}"


def checks_table(checks, title: str = "sanity checks") -> Table:
    """One row per sanity check: passed or not, and what was found, in plain words."""
    table = Table(title=title, show_lines=True)
    table.add_column("check", overflow="fold")
    table.add_column("result")
    table.add_column("finding", overflow="fold")
    for c in checks:
        result = "[dim]not run[/]" if c.passed is None else "[green]pass[/]" if c.passed else "[bold red]FAIL[/]"
        table.add_row(escape(c.name), result, escape(c.message))
    return table


def budgets_table(config: dict, title: str = "attack budgets") -> Table:
    """One row per attack of a run: its budget as used, and what it differentiated or queried."""
    table = Table(title=title)
    attacks = config.get("attacks", [])
    table.add_column("attack", no_wrap=True, min_width=max([len(a["name"]) for a in attacks] + [6]))
    for col in ("budget", "gradient"):
        table.add_column(col, overflow="fold")
    budgets = config.get("budgets", {})
    for a in attacks:
        budget = ", ".join(f"{k} {_budget_value(k, v)}" for k, v in budgets.get(a["method"], {}).items())
        grad = a["grad"] + (f" ({a['surrogate']})" if a.get("surrogate") not in (None, "-", "?") else "")
        table.add_row(escape(a["name"]), escape(budget), escape(grad))
    return table


def _budget_value(key: str, v) -> str:
    if key == "alpha":  # a step in input units, written like --alpha
        return format_eps(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return " + ".join(map(str, v))  # spaces: a narrow column wraps between items, not inside one
    return str(v)


def clean_adv_tables(runs, title: str = "clean vs adversarial CKA (same layer)", width: int = 80) -> list[Table]:
    """Per layer (rows) and eps (columns): CKA of the layer on clean vs adversarial inputs, in
    column blocks that fit `width`."""
    if not runs:
        return []
    per_eps = [dict(run.result.diagonal()) for run in runs]
    layers = runs[0].result.layers_a
    cells = [[cka_cell(d.get(name, float("nan"))) for d in per_eps] for name in layers]
    headers = [at_budget(run.result.config.get("eps_label", "?")) for run in runs]
    return column_blocks(title, "layer", list(layers), headers, cells, width)


def training_table(metrics: list[dict], title: str) -> Table:
    """One row per epoch: loss, accuracies and learning rate."""
    table = Table(title=title)
    for col in ("epoch", "train loss", "train acc", "test acc", "lr"):
        table.add_column(col, justify="right", **VALUE)
    for m in metrics:
        table.add_row(str(m["epoch"]), f"{m['train_loss']:.4f}", f"{m['train_acc']:.3f}",
                      f"{m['test_acc']:.3f}", f"{m['lr']:.4f}")
    return table


def demo_table(trained: dict, title: str) -> Table:
    """The demo's trained models: kind, data, test accuracy and training time (the checkpoints
    follow as whole lines, so that a path can be copied from a terminal of any width)."""
    table = Table(title=title)
    table.add_column("model", **VALUE)
    table.add_column("data", **VALUE)
    table.add_column("test acc", justify="right", **VALUE)
    table.add_column("train time", justify="right", **VALUE)
    for kind, result in trained.items():
        data = "digits-dvs" if kind.endswith("dvs") else "digits"
        table.add_row(kind.upper(), data, f"{result.test_accuracy:.1%}", f"{result.seconds:.1f} s")
    return table


def datasets_table(rows: list[dict], title: str | None = None) -> Table:
    """Every dataset: name, kind, input shape, classes, presence, cache size and folder. No box:
    seven columns and a folder fit 80 columns that way."""
    table = Table(title=title, box=None, pad_edge=False, title_justify="left")
    for col in ("name", "kind", "input"):
        table.add_column(col, **VALUE)
    table.add_column("classes", justify="right", **VALUE)
    table.add_column("present", **VALUE)
    table.add_column("cache", justify="right", **VALUE)
    table.add_column("folder", **TEXT)
    for row in rows:
        table.add_row(row["name"], row["kind"], "x".join(map(str, row["shape"])), str(row["classes"]),
                      "[green]yes[/]" if row["present"] else "[red]no[/]", _size(row["cache_bytes"]),
                      escape(row["folder"]))
    return table


def check_table(corrupt: list[tuple[str, str]], missing: list[str]) -> Table:
    """A dataset check's problems, corrupt files first (the ones to replace), then missing ones."""
    table = Table(show_lines=True)
    table.add_column("file", **TEXT)
    table.add_column("problem", **TEXT)
    for path, problem in corrupt:
        table.add_row(escape(path), escape(problem))
    for path in missing:
        table.add_row(escape(path), "missing")
    return table


def _size(n: float) -> str:
    """Bytes in B, KB, MB or GB (1024 steps)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)

