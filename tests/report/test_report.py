"""`suite report`: collecting result files (bad ones named, the rest reported), the terminal
summary, the self-contained HTML page and figure files."""

from __future__ import annotations

import base64
import json
import re
import shutil

import h5py
import pytest

from suite.errors import SuiteError
from suite.report.collect import collect
from suite.report.make import make_report
from suite.report.page import write_page
from suite.report.sections import FigureSpec, Section, build_sections
from tests.support import report_files as R
from tests.support.helpers import cli


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    return root, R.write_results(root)


@pytest.fixture
def folder(results, tmp_path):
    """A private copy of the results folder, free to spoil."""
    root, _ = results
    shutil.copytree(root, tmp_path / "run")
    return tmp_path / "run"


def assert_one_line_error(code, out, needle):
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], out
    assert "Traceback" not in out


# ----------------------------------------------------------------------------- collecting
def test_collect_reads_every_kind(results):
    root, _ = results
    c = collect([root])
    assert (len(c.cka), len(c.attacks), len(c.checkpoints), len(c.experiments)) == (6, 2, 2, 1)
    assert c.problems == []


def test_folder_with_corrupt_and_foreign_files_reports_the_rest_and_names_them(runner, folder):
    (folder / "reports" / "cut.h5").write_bytes((folder / "reports" / "cka-time-snn.h5").read_bytes()[:900])
    (folder / "runs" / "notes.pt").write_text("not a checkpoint")
    (folder / "reports" / "other.json").write_text(json.dumps({"format": "something-else"}))
    (folder / "reports" / "figure.png").write_bytes(b"\x89PNG")  # not a result: passed over silently
    code, out = cli(runner, "report", folder)
    assert code == 0, out
    flat = " ".join(out.split())
    assert flat.count("skipped ") == 3
    assert f"skipped {folder / 'reports' / 'cut.h5'}: not a readable HDF5 file" in flat
    assert f"skipped {folder / 'runs' / 'notes.pt'}: not a readable suite checkpoint" in flat
    assert f"skipped {folder / 'reports' / 'other.json'}: not a suite experiment file" in flat
    for title in ("training runs", "robustness: digits 8x8, test split", "CKA models: snn vs ann",
                  "CKA time: snn", "clean vs adversarial CKA: snn (pgd)", "experiment: tiny"):
        assert title in out, title


def test_result_of_another_schema_version_is_one_clear_line(runner, folder):
    path = folder / "reports" / "cka-models-snn-vs-ann.h5"
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 2
    code, out = cli(runner, "report", path)
    assert_one_line_error(code, out, "has schema version 2; this suite reads 1")
    code, out = cli(runner, "report", folder / "reports")  # among others: named and skipped
    assert code == 0 and f"skipped {path}: has schema version 2; this suite reads 1" in " ".join(out.split())


def test_nothing_readable_is_one_error(runner, tmp_path):
    (tmp_path / "a.h5").write_bytes(b"junk")
    (tmp_path / "b.pt").write_bytes(b"junk")
    code, out = cli(runner, "report", tmp_path)
    assert_one_line_error(code, out, "none of 2 files could be read")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = cli(runner, "report", empty)
    assert_one_line_error(code, out, "no result files")


def test_default_folders_are_reports_attacks_runs(runner, results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = cli(runner, "report")
    assert_one_line_error(code, out, "none of reports/, attacks/, runs/ exists")
    root, _ = results
    shutil.copytree(root / "attacks", tmp_path / "attacks")
    code, out = cli(runner, "report")
    assert code == 0 and "robustness: digits 8x8" in out and "CKA" not in out


# ----------------------------------------------------------------------------- terminal summary
def test_summary_says_what_was_compared(runner, results):
    root, paths = results
    code, out = cli(runner, "report", root)
    assert code == 0, out
    flat = " ".join(out.split())
    assert "compared: two models on the same inputs, layer by layer" in flat
    assert "model A: snn: SNN resnet20 (T=3, width 0.25)" in flat
    assert "model B: ann: ANN resnet20 (width 0.25)" in flat
    assert "data: digits 8x8, test split" in flat
    assert "samples: 48 in 3 minibatches" in flat
    assert "T: 3" in flat
    assert "attack: pgd, eps 0, 2/255, 8/255" in flat
    assert "SNN-vs-ANN CKA falls from 0.95 to 0.30 by the last layer: agrees" in flat


def test_notable_layers_come_from_the_stored_numbers(results):
    root, _ = results
    sections = {s.title: s for s in build_sections(collect([root]))}
    models = sections["CKA models: snn vs ann"]
    assert "same-layer CKA: highest at conv1 (0.95), lowest at fc (0.30)" in models.notes
    assert "largest drop between consecutive layers: layer1.0 -> layer2.0 (0.50)" in models.notes
    assert models.tables[0].rows == [[n, v] for n, v in zip(R.LAYERS, R.MODELS_DIAG)]
    time = sections["CKA time: snn"]
    assert time.notes == ["most change over time: fc (mean CKA between steps 0.55); least: conv1 (0.98)"]
    adv = sections["clean vs adversarial CKA: snn (pgd)"]
    assert adv.notes == ["at eps 8/255 the attack moves fc most (CKA 0.20) and conv1 least (0.99)"]
    assert adv.tables[0].columns == ["layer", "eps 0", "eps 2/255", "eps 8/255"]
    robust = sections["robustness: digits 8x8, test split"]
    assert "snn [bptt], pgd: accuracy 75.0% clean -> 0.0% at eps 8/255" in robust.notes


def test_report_fits_80_columns_and_cuts_no_name(runner, results):
    """In a pipe (80 columns): prose (facts "key: value", notes) wraps at spaces, only a single
    word wider than the line (a long path) running past column 80, whole; a table too wide
    prints wider (suite.report.layout) rather than cut; every name and number stays whole."""
    root, paths = results
    code, out = cli(runner, "report", root)
    lines = out.splitlines()
    assert [line for line in lines if len(line) > 80 and ": " in line] == []
    assert "SNN resnet20 (T=3, width 0.25)" in out  # a table's text cell, unbroken
    for layer in R.LAYERS:
        assert any(line.split()[:1] == [layer] for line in lines), layer
    words = {w.rstrip(",") for line in lines for w in line.split()}
    for key, path in paths.items():
        if key != "experiment-figure":
            assert str(path) in words, path  # each file name whole on one line
    assert "…" not in out


# ----------------------------------------------------------------------------- the page
def test_page_is_self_contained_with_every_figure_inline(runner, results, tmp_path):
    root, _ = results
    page = tmp_path / "out" / "report.html"
    code, out = cli(runner, "report", root, "--html", page)
    assert code == 0 and f"page: {page}" in " ".join(out.split())
    html = page.read_text()
    n_figures = sum(len(s.figures) for s in build_sections(collect([root])))
    # by hand: training 1, robustness 1 (SNN and ANN on one axes), models 1, time 1,
    # static-event 2 (heatmap and diagonal), clean-adv 1 (its three eps in one figure)
    assert n_figures == 7
    images = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(images) == n_figures + 1  # and the experiment's own figure (diagonal.png)
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"https?:", html, re.IGNORECASE)  # nothing loaded from (or linking to) a URL
    assert "<script" not in html and "<link" not in html and "url(" not in html
    assert "SNN-vs-ANN CKA falls from 0.95 to 0.30" in html and 'class="verdict agrees"' in html
    embedded = base64.b64encode((root / "reports" / "diagonal.png").read_bytes()).decode("ascii")
    assert f'src="data:image/png;base64,{embedded}"' in html


def test_page_shows_every_files_provenance(results, tmp_path):
    root, paths = results
    report = make_report([root], html=tmp_path / "p.html")
    html = report.page.read_text()
    import torch

    results = [p for key, p in paths.items() if key != "experiment-figure"]
    for path in results:
        assert f"<td><code>{path}</code></td>" in html  # a provenance row per file
    assert html.count(f"<td>{torch.__version__}</td>") == len(results) + 1  # every file's row, and the page's
    assert "<td>cpu</td>" in html


def test_page_writer_is_atomic(results, tmp_path):
    root, _ = results
    page = tmp_path / "report.html"
    page.write_text("the earlier page")

    def broken():
        raise RuntimeError("drawing failed")

    sections = build_sections(collect([root]))
    sections.append(Section(title="broken", kind="cka", figures=[FigureSpec("x", "x", broken)]))
    with pytest.raises(RuntimeError):
        write_page(page, sections, [])
    assert page.read_text() == "the earlier page"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    write_page(page, sections[:-1], [])
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_page_lists_skipped_files(folder, tmp_path):
    (folder / "reports" / "junk.h5").write_bytes(b"junk")
    html = make_report([folder], html=tmp_path / "p.html").page.read_text()
    assert "Files not shown (1)" in html and "junk.h5" in html


# ----------------------------------------------------------------------------- figure files
def test_figures_folder_in_every_format(runner, results, tmp_path):
    root, paths = results
    code, out = cli(runner, "report", paths["models"], paths["time"], "--figures", tmp_path / "f",
                    "--format", "png,svg")
    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [
        "cka-models-snn-vs-ann.png", "cka-models-snn-vs-ann.svg", "cka-time-snn.png", "cka-time-snn.svg"]


@pytest.mark.parametrize("args,needle", [
    (["--figures", "F", "--format", "gif"], "unknown figure format gif"),
    (["--format", "png"], "--format sets the formats of --figures"),
])
def test_bad_figure_options_are_one_line(runner, results, tmp_path, args, needle):
    root, _ = results
    args = [tmp_path / "F" if a == "F" else a for a in args]
    code, out = cli(runner, "report", root, *args)
    assert_one_line_error(code, out, needle)
    assert not (tmp_path / "F").exists()


def test_missing_path_is_named(results):
    root, _ = results
    c = collect([root / "nope", root / "runs"])
    assert c.problems == [(root / "nope", "no such file or folder")] and len(c.checkpoints) == 2
    with pytest.raises(SuiteError, match="nope: no such file or folder"):
        make_report([root / "nope"])


def test_experiment_figure_beside_a_reported_cka_result_is_drawn_once(tmp_path):
    """An experiment lists the heatmap PNG beside its CKA result; when the report also reads
    that result, its own section draws the heatmap and the experiment's section does not embed
    the copy. Without the result in the report, the experiment's section keeps the PNG."""
    paths = R.write_results(tmp_path)
    heatmap = paths["models"].with_suffix(".png")
    heatmap.write_bytes(paths["experiment-figure"].read_bytes())  # any PNG stands for the drawn heatmap
    exp_path = paths["experiment"]
    data = json.loads(exp_path.read_text())
    data["files"]["figures"].append(heatmap.name if not data["files"]["figures"][0].startswith("/") else str(heatmap))
    exp_path.write_text(json.dumps(data))
    with_result = build_sections(collect([tmp_path]))
    (exp_section,) = [s for s in with_result if s.kind == "experiment"]
    assert [p.name for p in exp_section.images] == [paths["experiment-figure"].name]
    alone = build_sections(collect([exp_path]))
    (exp_section,) = [s for s in alone if s.kind == "experiment"]
    assert sorted(p.name for p in exp_section.images) == sorted([paths["experiment-figure"].name, heatmap.name])


def test_one_pair_read_two_ways_gets_two_titles(tmp_path):
    """The same two models under the suite's protocol and SNNCKA's (every layer, time steps
    concatenated): each section title says how its result read the layers, so the page's contents
    do not list the same title twice."""
    from dataclasses import replace

    from suite.report.sections import cka_section

    snn, ann = R.model_config("snn").to_dict(), R.model_config("ann").to_dict()
    base = R.cka(R.with_diagonal(R.MODELS_DIAG), "models", model="runs/snn.pt", model2="runs/ann.pt",
                 model_config=snn, model2_config=ann, split="test", data_spec=R.SPEC.to_dict())
    snncka = replace(base, time="concat", config={**base.config, "layers": ["@snncka"]})
    fine = replace(base, config={**base.config, "layers": ["@conv-lif"]})
    titles = [cka_section(tmp_path / f"{i}.h5", r).title for i, r in enumerate((base, snncka, fine))]
    assert titles == ["CKA models: snn vs ann", "CKA models: snn vs ann (layers @snncka, time concat)",
                      "CKA models: snn vs ann (layers @conv-lif)"]
