"""What a report says about collected results, as plain data: one `Section` per result (or
group of results drawn together), holding facts (what was compared, models, data, eps, T,
samples), tables, notable layers, figures to draw and the provenance of every file used.

The terminal report (suite.report.terminal) and the HTML page (suite.report.page) render
the same sections, so both say the same thing. Every number comes from the files read.
"""

from __future__ import annotations

import os

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from matplotlib.figure import Figure

from suite.checkpoint import Checkpoint
from suite.report import figures as F
from suite.report.collect import Collection
from suite.results.attacks import StoreSummary, at_budget, clean_adv_stem, robustness_notes
from suite.results.cka import CKAResult
from suite.results.experiment import MAIN_ESTIMATE, Experiment, Finding, bound

Cell = str | float | None  # str: shown as is; float: a CKA value (coloured); None: undefined


@dataclass
class Table:
    """A table of cells: strings shown as they are, floats as CKA values (coloured), None as n/a."""

    title: str
    columns: list[str]
    rows: list[list[Cell]]


@dataclass
class FigureSpec:
    """A figure drawn on first use (`figure()`, then kept), and the file stem it is saved under."""

    name: str
    title: str
    draw: Callable[[], Figure]
    _drawn: Figure | None = field(default=None, repr=False)

    def figure(self) -> Figure:
        if self._drawn is None:
            self._drawn = self.draw()
        return self._drawn


@dataclass
class Section:
    """One block of the report: a result, or results shown together (robustness curves of
    several models, the eps of one clean-vs-adversarial run, all training runs)."""

    title: str
    kind: str  # experiment, training, robustness, cka, clean-adv
    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: list[FigureSpec] = field(default_factory=list)
    sources: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)  # (file, provenance)
    findings: list[dict[str, Any]] = field(default_factory=list)  # experiments: sentence, verdict, source
    images: list[Path] = field(default_factory=list)  # PNG files already drawn (an experiment's own figures)


COMPARED = {
    "models": "two models on the same inputs, layer by layer",
    "layers": "a model's layers against each other",
    "time": "each layer's time steps against each other",
    "clean-adv": "a model's layers on clean vs adversarial inputs",
    "static-event": "static images vs their event recordings (same samples)",
}


# ----------------------------------------------------------------------------- descriptions
def _stem(path: Any) -> str:
    return Path(str(path)).stem if path else "?"


def describe_model(cfg: dict[str, Any] | None) -> str:
    """`SNN resnet20 (T=4, width 0.5)` from a stored model config."""
    if not cfg:
        return "?"
    kind = str(cfg.get("kind", "?"))
    if "factory" in cfg:  # a model file's network (suite.modelfile): its framework and factory
        extra = [f"T={cfg.get('timesteps')}"] if kind == "snn" else []
        return f"{kind.upper()} {cfg.get('framework', '?')} {cfg['factory']}" + (f" ({', '.join(extra)})" if extra else "")
    extra = [f"T={cfg.get('timesteps')}"] if kind == "snn" else []
    extra.append(f"width {cfg.get('width', '?'):g}" if isinstance(cfg.get("width"), (int, float)) else "width ?")
    if cfg.get("residual") is False:
        extra.append("no residual")
    return f"{kind.upper()} {cfg.get('arch', '?')} ({', '.join(extra)})"


def describe_data(spec: dict[str, Any] | None, split: str | None = None) -> str:
    """`digits 16x16, test split` from a stored data spec."""
    if not spec:
        return "?"
    text = str(spec.get("name", "?"))
    if spec.get("size"):
        text += f" {spec['size']}x{spec['size']}"
    if spec.get("timesteps"):
        text += f", {spec['timesteps']} frame bins"
    return text + (f", {split} split" if split else "")


# ----------------------------------------------------------------------------- CKA
def notable_diagonal(diag: list[tuple[str, float]], what: str) -> list[str]:
    """Highest and lowest same-layer CKA and the largest drop between consecutive layers."""
    finite = [(n, v) for n, v in diag if math.isfinite(v)]
    if not finite:
        return [f"{what}: every layer's CKA is undefined (constant features)"]
    hi = max(finite, key=lambda t: t[1])
    lo = min(finite, key=lambda t: t[1])
    notes = [f"{what}: highest at {hi[0]} ({hi[1]:.2f}), lowest at {lo[0]} ({lo[1]:.2f})"]
    drops = [(a[0], b[0], a[1] - b[1]) for a, b in zip(diag, diag[1:]) if math.isfinite(a[1]) and math.isfinite(b[1])]
    if drops:
        a, b, d = max(drops, key=lambda t: t[2])
        if d > 0:
            notes.append(f"largest drop between consecutive layers: {a} -> {b} ({d:.2f})")
    undefined = [n for n, v in diag if not math.isfinite(v)]
    if undefined:
        notes.append(f"undefined (a side with constant features): {', '.join(undefined)}")
    return notes


def _cka_facts(path: Path, result: CKAResult) -> list[tuple[str, str]]:
    cfg = result.config
    facts = [("file", str(path)), ("compared", COMPARED.get(result.compare, result.compare))]
    facts.append(("model" if result.compare in ("time", "layers", "clean-adv") or not cfg.get("model2") else "model A",
                  f"{_stem(cfg.get('model'))}: {describe_model(cfg.get('model_config'))}"))
    if cfg.get("model2"):
        facts.append(("model B", f"{_stem(cfg.get('model2'))}: {describe_model(cfg.get('model2_config'))}"))
    if result.compare == "static-event":
        facts.append(("event input", str(cfg.get("event_input", "?"))))
    facts.append(("data", describe_data(cfg.get("data_spec"), cfg.get("split"))))
    if result.compare == "time":
        facts.append(("T", str(result.matrix.shape[-1])))
    elif (cfg.get("model_config") or {}).get("kind") == "snn" or (cfg.get("model2_config") or {}).get("kind") == "snn":
        facts.append(("SNN features over time", str(result.time)))
    facts.append(("samples", f"{result.n_samples} in {result.n_batches} minibatches"))
    return facts


def _read_how(result: CKAResult) -> str:
    """' (layers @snncka, time concat)' where a result hooks a named layer set or does not average
    SNN outputs over time, so that one pair of models read two ways gets two titles."""
    how = [f"layers {', '.join(result.config['layers'])}"] if result.config.get("layers") else []
    if result.compare != "time" and result.time not in (None, "mean"):
        how.append(f"time {result.time}")
    return f" ({', '.join(how)})" if how else ""


def cka_section(path: Path, result: CKAResult) -> Section:
    """A CKA result other than clean-vs-adversarial: facts, diagonal or time table, notable
    layers, the heatmap or temporal grid (and the static-vs-event diagonal)."""
    cfg = result.config
    names = _stem(cfg.get("model")) + (f" vs {_stem(cfg.get('model2'))}" if cfg.get("model2") else "")
    section = Section(title=f"CKA {result.compare}: {names}{_read_how(result)}", kind="cka",
                      facts=_cka_facts(path, result),
                      sources=[(path, dict(result.provenance))])
    stem = path.stem
    if result.compare == "time":
        T = result.matrix.shape[-1]
        off = ~torch.eye(T, dtype=torch.bool)
        rows, means = [], []
        for name, mat in zip(result.layers_a, result.matrix):
            mean_off = float(mat[off].nanmean()) if T > 1 else float("nan")
            means.append((name, mean_off))
            rows.append([name, float(mat[0, min(1, T - 1)]), *([float(mat[0, T - 1])] if T > 2 else []), mean_off])
        cols = ["layer", "t0 vs t1", *([f"t0 vs t{T - 1}"] if T > 2 else []), "mean over t != t'"]
        section.tables.append(Table("CKA between time steps", cols, rows))
        finite = [(n, v) for n, v in means if math.isfinite(v)]
        if finite:
            lo, hi = min(finite, key=lambda t: t[1]), max(finite, key=lambda t: t[1])
            section.notes.append(f"most change over time: {lo[0]} (mean CKA between steps {lo[1]:.2f}); "
                                 f"least: {hi[0]} ({hi[1]:.2f})")
        section.figures.append(FigureSpec(stem, section.title, lambda: F.temporal_grid(result)))
        return section
    if result.compare == "layers":
        m = result.matrix.clone()
        m.fill_diagonal_(float("nan"))
        section.notes.extend(_extremes(result, m))
    else:
        diag = result.diagonal()
        if diag:
            label = "CKA(static, event)" if result.compare == "static-event" else "CKA"
            section.tables.append(Table("same layer on both sides", ["layer", label],
                                        [[n, v] for n, v in diag]))
            section.notes.extend(notable_diagonal(diag, "same-layer CKA"))
        else:
            section.notes.extend(_extremes(result, result.matrix))
    section.figures.append(FigureSpec(stem, section.title, lambda: F.cka_heatmap(result, section.title)))
    if result.compare == "static-event" and result.diagonal():
        section.figures.append(FigureSpec(f"{stem}-diagonal", "static vs event, same layer",
                                          lambda: F.static_event_diagonal(result)))
    return section


def _extremes(result: CKAResult, m: torch.Tensor) -> list[str]:
    """Most and least similar pair of distinct entries (NaN cells left out)."""
    flat = m.flatten()
    ok = torch.isfinite(flat)
    if not bool(ok.any()):
        return []
    idx = torch.arange(flat.numel())[ok]
    best, worst = idx[int(flat[ok].argmax())], idx[int(flat[ok].argmin())]
    cols = m.shape[1]
    pair = lambda k: f"{result.layers_a[int(k) // cols]} / {result.layers_b[int(k) % cols]}"  # noqa: E731
    return [f"most similar pair: {pair(best)} ({float(flat[best]):.2f}); "
            f"least similar: {pair(worst)} ({float(flat[worst]):.2f})"]


def clean_adv_groups(items: list[tuple[Path, CKAResult]]) -> list[list[tuple[Path, CKAResult]]]:
    """Clean-vs-adversarial results grouped by (attack store, model, method), by increasing eps."""
    groups: dict[tuple, list[tuple[Path, CKAResult]]] = {}
    for path, r in items:
        key = (str(r.config.get("attack")), str(r.config.get("model")), str(r.config.get("method")))
        groups.setdefault(key, []).append((path, r))
    return [sorted(g, key=lambda t: float(t[1].config.get("eps", 0.0))) for g in groups.values()]


def clean_adv_section(group: list[tuple[Path, CKAResult]]) -> Section:
    """The eps of one clean-vs-adversarial run: per-layer CKA table (layer x eps), the layers
    the largest eps moves most and least, and one line per eps in one figure."""
    first = group[0][1]
    cfg = first.config
    eps_labels = [r.config.get("eps_label", "?") for _, r in group]
    section = Section(
        title=f"clean vs adversarial CKA: {_stem(cfg.get('model'))} ({cfg.get('method', '?')})", kind="clean-adv",
        facts=[("files", ", ".join(str(p) for p, _ in group)), ("compared", COMPARED["clean-adv"]),
               ("model", f"{_stem(cfg.get('model'))}: {describe_model(cfg.get('model_config'))}"),
               ("attack store", str(cfg.get("attack", "?"))),
               ("attack", f"{cfg.get('method', '?')}, {at_budget(', '.join(eps_labels))}"),
               ("robust accuracy", ", ".join(f"{at_budget(r.config.get('eps_label', '?'))}: {r.config['robust_acc']:.1%}"
                                             for _, r in group if "robust_acc" in r.config)),
               ("samples", str(first.n_samples))],
        sources=[(p, dict(r.provenance)) for p, r in group])
    diags = [dict(r.diagonal()) for _, r in group]
    layers = [n for n in first.layers_a if n in first.layers_b]
    section.tables.append(Table("CKA(clean, adversarial), same layer",
                                ["layer", *[at_budget(e) for e in eps_labels]],
                                [[n, *[d.get(n, float("nan")) for d in diags]] for n in layers]))
    top = max(group, key=lambda t: float(t[1].config.get("eps", 0.0)))[1]
    finite = [(n, v) for n, v in top.diagonal() if math.isfinite(v)]
    if finite and float(top.config.get("eps", 0.0)) > 0:
        lo, hi = min(finite, key=lambda t: t[1]), max(finite, key=lambda t: t[1])
        section.notes.append(f"at {at_budget(top.config.get('eps_label', '?'))} the attack moves {lo[0]} most "
                             f"(CKA {lo[1]:.2f}) and {hi[0]} least ({hi[1]:.2f})")
    stem = clean_adv_stem(group[0][0])
    results = [r for _, r in group]
    section.figures.append(FigureSpec(stem, section.title, lambda: F.clean_adv_lines(results, section.title)))
    return section


# ----------------------------------------------------------------------------- attacks, training
def _model_label(summary: StoreSummary) -> str:
    grad = summary.config.get("gradient", {}).get("grad") or summary.config.get("attack", {}).get("grad", "?")
    model = summary.config.get("model") or {}
    label = _stem(summary.config.get("checkpoint")) if summary.config.get("checkpoint") else summary.path.stem
    return f"{label} [{grad}]" if model.get("kind") == "snn" else label


def robustness_sections(stores: list[StoreSummary]) -> list[Section]:
    """Attack stores grouped by the data they attacked: one section per group, every model's
    robustness curve on one axes."""
    groups: dict[tuple[str, str], list[StoreSummary]] = {}
    for s in stores:  # one axes per data and threat: L-inf budgets and budgets in events do not share one
        key = (describe_data(s.config.get("data"), s.config.get("split")),
               s.config.get("attack", {}).get("threat", "frames"))
        groups.setdefault(key, []).append(s)
    sections = []
    for (data, threat), group in groups.items():
        title = f"robustness{' under event attacks' if threat == 'events' else ''}: {data}"
        section = Section(title=title, kind="robustness", facts=[("data", data)],
                          sources=[(s.path, dict(s.provenance)) for s in group])
        section.facts.append(("files", ", ".join(str(s.path) for s in group)))
        section.tables.append(Table("what was attacked", ["model", "gradient", "budgets" if threat == "events" else "eps",
                                                          "samples"], [
            [describe_model(s.config.get("model")), _gradient(s),
             ", ".join(dict.fromkeys(r["eps_label"] for r in s.rows)), str(s.n_samples)] for s in group]))
        events = any(r.get("threat") == "events" for s in group for r in s.rows)
        size = ["max events", "% of recording"] if events else ["max L-inf"]
        section.tables.append(Table("accuracy under attack", ["model", "method", "budget" if events else "eps", "clean",
                                                              "robust", *size], [
            [_model_label(s), r["method"], r["eps_label"], f"{r['clean_acc']:.1%}", f"{r['robust_acc']:.1%}",
             *([f"{r['linf_max']:.0f}", _pct(r.get("fraction_mean"))] if events else [f"{r['linf_max']:.4f}"])]
            for s in group for r in s.rows]))
        for s in group:
            section.notes.extend(_robustness_notes(s))
            section.notes.extend(f"{_model_label(s)}: {note}" for note in robustness_notes(s.config))
        curves = [(_model_label(s), s.rows) for s in group]
        name = ("robustness-" + "-".join(str(s.config.get("data", {}).get("name", "data")) for s in group[:1])
                + ("-events" if threat == "events" else ""))
        section.figures.append(FigureSpec(name, section.title, lambda c=curves, t=section.title: F.robustness_curves(c, t)))
        sections.append(section)
    return sections


def _gradient(s: StoreSummary) -> str:
    g = s.config.get("gradient", {})
    text = str(g.get("grad", s.config.get("attack", {}).get("grad", "?")))
    if g.get("surrogate") not in (None, "", "?", "-"):
        text += f" ({g['surrogate']})"
    return text


def _robustness_notes(s: StoreSummary) -> list[str]:
    """Per method: accuracy at the largest eps against clean accuracy."""
    notes = []
    for method in dict.fromkeys(r["method"] for r in s.rows):
        rows = sorted((r for r in s.rows if r["method"] == method), key=lambda r: r["eps"])
        top = rows[-1]
        if top["eps"] > 0:
            notes.append(f"{_model_label(s)}, {method}: accuracy {top['clean_acc']:.1%} clean -> "
                         f"{top['robust_acc']:.1%} at {'' if top.get('threat') == 'events' else 'eps '}{top['eps_label']}")
    return notes


def training_section(checkpoints: list[Checkpoint]) -> Section:
    """All checkpoints: model, data, epochs, final metrics; one training-curve figure."""
    section = Section(title="training runs", kind="training", facts=[("files", ", ".join(str(c.path) for c in checkpoints))],
                      sources=[(c.path, dict(c.provenance)) for c in checkpoints])
    rows = []
    for c in checkpoints:
        last = c.metrics[-1] if c.metrics else {}
        rows.append([c.path.stem, describe_model(c.model_config.to_dict()), describe_data(c.data_spec.to_dict()),
                     str(c.epoch), _pct(last.get("train_acc")), _pct(last.get("test_acc")),
                     f"{last['train_loss']:.3f}" if isinstance(last.get("train_loss"), (int, float)) else "-"])
    section.tables.append(Table("checkpoints", ["checkpoint", "model", "data", "epochs", "train acc", "test acc",
                                                "train loss"], rows))
    runs = [(c.path.stem, c.metrics) for c in checkpoints if c.metrics]
    if runs:
        section.figures.append(FigureSpec("training", "training curves", lambda: F.training_curves(runs, "training curves")))
    return section


def model_files_section(files: list[tuple[Path, dict]]) -> Section:
    """Model files named to the report (suite.modelfile), as their [model] tables say: read, never
    built (a report computes nothing)."""
    section = Section(title="model files", kind="training", facts=[("files", ", ".join(str(p) for p, _ in files))])
    rows = []
    for path, t in files:
        weights = Path(os.path.normpath(path.parent / str(t.get("weights", ""))))
        time = "TB" if t.get("timesteps") else "B"
        how = f"T={t['timesteps']}, " if t.get("timesteps") else ""
        rows.append([path.name, str(t.get("factory", "?")),
                     f"{t.get('dataset', '?')}; {how}input {t.get('input', time)}, output {t.get('output', time)}",
                     str(weights) + ("" if weights.is_file() else " (missing)")])
    section.tables.append(Table("model files", ["file", "factory", "data and time layout", "weights"], rows))
    return section


def _pct(v: Any) -> str:
    return f"{v:.1%}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def _lead(sentence: str, verdict: str) -> str:
    """The sentence up to its closing verdict word, which the terminal and the page colour:
    a finding's sentence names the paper's source and ends with ": <verdict>"."""
    return sentence[:-len(verdict)] if sentence.endswith(": " + verdict) else sentence + ": "


def _interval(e: dict, margin: float | None) -> tuple[str, str]:
    """d's mean and its 95% interval as text, bounds kept on their side of the margin."""
    iv = e.get("interval") or {}
    if iv.get("mean") is None:
        return "n/a", "-"
    ci = f"[{bound(iv['lo'], margin)}, {bound(iv['hi'], margin)}]" if iv.get("lo") is not None else "none"
    return bound(iv["mean"], margin), ci


def _at_a_glance(f: Finding, seeds: Any) -> dict[str, Any]:
    """A finding as the page leads with it: the claim, the verdict, d with its interval and seeds
    (the default protocol and measure), what d is; then a table of d per measure and protocol with
    the two-model reference points. The full sentence stays in the terminal and the JSON."""
    if not f.estimates:
        return {"claim": f"the paper ({f.source}) {f.claim}", "d": "", "what": "", "table": None}
    main = next((e for e in f.estimates if (e.get("protocol"), e.get("measure")) == MAIN_ESTIMATE), f.estimates[0])
    mean, ci = _interval(main, f.margin)
    n = len((main.get("interval") or {}).get("per_seed") or [])
    seeds_text = ", ".join(map(str, seeds)) if isinstance(seeds, list) and len(seeds) == n else str(n)
    reference = any(e.get("headline") is not None or e.get("ceiling") or e.get("floor") is not None
                    for e in f.estimates)
    columns = ["measure", "protocol", "d", "95% interval", "verdict"]
    columns += ["two-model similarity", "ceiling", "floor"] if reference else []
    rows = []
    for e in f.estimates:
        m, c = _interval(e, f.margin)
        row = [str(e.get("measure")), str(e.get("protocol")), m, c, str(e.get("verdict"))]
        if reference:
            ceiling = ", ".join(f"{k} {_num(v)}" for k, v in (e.get("ceiling") or {}).items()) or "-"
            row += [_num(e.get("headline")), ceiling, _num(e.get("floor"))]
        rows.append(row)
    return {"claim": f"the paper ({f.source}) {f.claim}",
            "d": f"d = {mean} {ci if ci != 'none' else '(no interval)'} over seeds {seeds_text}"
                 f" ({main.get('measure')}, {main.get('protocol')} protocol)",
            "what": f.what, "table": Table("d by measure and protocol", columns, rows)}


def _num(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def experiment_section(exp: Experiment, drawn: frozenset[Path] = frozenset()) -> Section:
    """An experiment's findings (sentence, verdict, the paper's section), with its provenance,
    and its own PNG figures except those in `drawn` (a heatmap beside a CKA result that this
    report draws in that result's own section)."""
    section = Section(title=f"experiment: {exp.recipe}", kind="experiment",
                      facts=[("file", str(exp.path)), ("recipe", exp.recipe),
                             ("settings", ", ".join(f"{k}={v}" for k, v in exp.config.items()
                                                    if not isinstance(v, (dict, list))) or "-")],
                      sources=[(exp.path, dict(exp.provenance))] if exp.path else [])
    for f in exp.findings:
        section.findings.append({"sentence": f.sentence, "lead": _lead(f.sentence, f.verdict), "verdict": f.verdict,
                                 "source": f.source, "rule": f.rule, "files": [str(p) for p in f.files],
                                 **_at_a_glance(f, exp.config.get("seeds"))})
    for p in exp.files.get("figures", []):
        if p.suffix.lower() != ".png" or p.resolve() in drawn:
            continue
        if p.is_file():
            section.images.append(p)
        else:
            section.notes.append(f"figure listed by the experiment is missing: {p}")
    return section


# ----------------------------------------------------------------------------- all of it
def build_sections(collection: Collection) -> list[Section]:
    """Sections in reading order: experiment findings, training, robustness, CKA results,
    clean-vs-adversarial CKA."""
    plain = [(p, r) for p, r in collection.cka if r.compare != "clean-adv"]
    drawn = frozenset(p.with_suffix(".png").resolve() for p, _ in plain)
    sections = [experiment_section(e, drawn) for e in collection.experiments]
    if collection.checkpoints:
        sections.append(training_section(collection.checkpoints))
    if collection.model_files:
        sections.append(model_files_section(collection.model_files))
    sections.extend(robustness_sections(collection.attacks))
    sections.extend(cka_section(p, r) for p, r in plain)
    sections.extend(clean_adv_section(g) for g in clean_adv_groups(
        [(p, r) for p, r in collection.cka if r.compare == "clean-adv"]))
    return sections
