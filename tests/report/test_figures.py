"""Figures (suite.report.figures): each type drawn from a small result file, checked against
the numbers written into that file by hand (tests/support/report_files.py)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from suite.checkpoint import load_checkpoint
from suite.errors import SuiteError
from suite.report import figures as F
from suite.results.attacks import read_summary
from suite.results.cka import CKAResult
from tests.support import report_files as R


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return R.write_results(tmp_path_factory.mktemp("results"), experiment=False)


def line_data(fig: Figure) -> dict[str, tuple[list[float], list[float]]]:
    ax = fig.axes[0]
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


def test_heatmap_shows_the_stored_matrix(files):
    result = CKAResult.load(files["models"])
    fig = F.cka_heatmap(result)
    image = fig.axes[0].images[0]
    assert np.allclose(image.get_array(), R.with_diagonal(R.MODELS_DIAG).numpy())
    assert image.get_clim() == (0, 1)  # fixed range: heatmaps compare across figures
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == R.LAYERS
    assert fig.axes[0].get_ylabel() == "snn" and fig.axes[0].get_xlabel() == "ann"


def test_heatmap_reference_row_sits_apart_with_its_same_layer_values(files):
    """The reference row (here the file's own diagonal, written by hand) comes after a blank gap
    row that has neither values nor a tick."""
    result = CKAResult.load(files["models"])
    fig = F.cka_heatmap(result, reference=("ceiling", result))
    image, ax = fig.axes[0].images[0], fig.axes[0]
    grid = image.get_array()
    assert grid.shape == (6, 4) and grid.mask[4].all()
    assert np.allclose(grid[5], R.MODELS_DIAG)
    assert list(ax.get_yticks()) == [0, 1, 2, 3, 5]
    assert [t.get_text() for t in ax.get_yticklabels()] == [*R.LAYERS, "ceiling"]


def test_heatmap_makes_room_for_a_long_reference_label(files):
    """A 38-character row label and the axis name left of it stay inside the figure."""
    result = CKAResult.load(files["models"])
    fig = F.cka_heatmap(result, reference=("ceiling: model a vs its next-seed twin", result))
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    for text in [*ax.get_yticklabels(), ax.yaxis.label]:
        assert text.get_window_extent(renderer).x0 >= 0, text.get_text()


def test_heatmap_refuses_a_time_result(files):
    with pytest.raises(SuiteError, match="temporal_grid"):
        F.cka_heatmap(CKAResult.load(files["time"]))


def test_temporal_grid_one_panel_per_layer_labels_on_outer_panels(files):
    result = CKAResult.load(files["time"])
    fig = F.temporal_grid(result)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert [ax.get_title() for ax in panels] == R.LAYERS
    # one row of 4 panels: the y label on the first only (a label on every panel drew the stray
    # marks at the right edge of its left neighbour), x labels on all (all are in the bottom row)
    assert [ax.get_ylabel() for ax in panels] == ["time step", "", "", ""]
    assert all(ax.get_xlabel() == "time step" for ax in panels)
    assert list(panels[0].get_xticks()) == [0, 1, 2]  # whole time steps only


def test_temporal_grid_colours_span_the_values_present(files):
    """Off-diagonal values 0.55..0.98: colours from 0.55 (floored to 0.05) to 1, not 0 to 1."""
    fig = F.temporal_grid(CKAResult.load(files["time"]))
    clims = {ax.images[0].get_clim() for ax in fig.axes if ax.images}
    assert clims == {(0.55, 1.0)}
    near_one = R.cka(R.time_matrix([0.97, 0.93]), "time", layers_a=["a", "b"], layers_b=["a", "b"])
    assert F.time_colour_range(near_one) == (0.9, 1.0)  # 0.93 floored to 0.90


def test_temporal_grid_marks_undefined_cells(files):
    m = R.time_matrix([0.8, 0.9])
    m[1, 0, :] = float("nan")
    m[1, :, 0] = float("nan")
    fig = F.temporal_grid(R.cka(m, "time", layers_a=["a", "b"], layers_b=["a", "b"]))
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert texts.count("n/a") == 5 and F.time_colour_range(R.cka(m, "time", layers_a=["a", "b"],
                                                                  layers_b=["a", "b"])) == (0.8, 1.0)


def test_robustness_curves_put_snn_and_ann_on_one_axes(files):
    curves = [(kind.upper(), read_summary(files[f"{kind}-store"]).rows) for kind in ("snn", "ann")]
    fig = F.robustness_curves(curves)
    assert len([ax for ax in fig.axes if ax.get_lines()]) == 1
    lines = line_data(fig)
    assert set(lines) == {"SNN fgsm", "SNN pgd", "ANN fgsm", "ANN pgd"}
    assert lines["SNN pgd"][0] == pytest.approx([0, 2, 8])  # eps in units of 1/255
    assert lines["SNN pgd"][1] == pytest.approx(R.ROBUST["snn"]["pgd"])
    assert lines["ANN fgsm"][1] == pytest.approx(R.ROBUST["ann"]["fgsm"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "2/255", "8/255"]


def test_clean_adv_lines_one_line_per_eps_in_eps_order(files):
    results = [CKAResult.load(files[k]) for k in ("clean-adv-8/255", "clean-adv-0", "clean-adv-2/255")]
    lines = line_data(F.clean_adv_lines(results))
    assert list(lines) == ["eps 0", "eps 2/255", "eps 8/255"]
    for eps, label in zip(R.CLEAN_ADV, lines):
        assert lines[label][1] == pytest.approx(R.CLEAN_ADV[eps])


def test_static_event_diagonal_from_file(files):
    lines = line_data(F.static_event_diagonal(CKAResult.load(files["static-event"])))
    (label, (x, y)), = lines.items()
    assert label == "snn vs snn-dvs" and y == pytest.approx([0.8, 0.7, 0.6, 0.5])


def test_diagonals_of_different_depths_share_a_relative_depth_axis():
    short = R.cka(R.with_diagonal([0.9, 0.5]), "models", layers_a=["a", "b"], layers_b=["a", "b"])
    deep = R.cka(R.with_diagonal([0.9, 0.8, 0.4]), "models", layers_a=list("abc"), layers_b=list("abc"))
    lines = line_data(F.diagonal_figure([("short", short), ("deep", deep)], "depth"))
    assert lines["short"][0] == pytest.approx([0, 1]) and lines["deep"][0] == pytest.approx([0, 0.5, 1])


def test_training_curves_from_checkpoint_metrics(files):
    runs = [(p.stem, load_checkpoint(p).metrics) for p in (files["snn.pt"], files["ann.pt"])]
    fig = F.training_curves(runs)
    loss_ax, acc_ax = fig.axes[:2]
    loss = {line.get_label(): list(line.get_ydata()) for line in loss_ax.get_lines()}
    assert loss == {"snn": pytest.approx(R.LOSSES), "ann": pytest.approx(R.LOSSES)}
    test = {line.get_label(): list(line.get_ydata()) for line in acc_ax.get_lines()}
    assert test["snn test"] == pytest.approx([0.25, 0.45, 0.65]) and test["snn train"] == pytest.approx([0.3, 0.5, 0.7])


@pytest.mark.parametrize("n_runs", [11, 48])
def test_training_curves_of_many_runs_keep_their_axes(n_runs, tmp_path):
    """48 runs (experiment all) once drew a 144-entry legend that collapsed both axes (matplotlib
    warned and the plot was empty); beyond ten runs the legend names the line styles and the count."""
    runs = [(f"run-{k}", [{"epoch": e, "train_loss": 1 / e + k / 100, "train_acc": 0.5 + e / 20,
                           "test_acc": 0.45 + e / 20} for e in range(1, 9)]) for k in range(n_runs)]
    fig = F.training_curves(runs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied because axes sizes collapsed"
        fig.savefig(tmp_path / "t.png", dpi=60)
    loss_ax, acc_ax = fig.axes[:2]
    assert loss_ax.get_legend() is None
    legend = acc_ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["test (one colour per run)", "train (one colour per run)"]
    assert legend.get_title().get_text() == f"{n_runs} runs"
    assert len(loss_ax.get_lines()) == n_runs and len(acc_ax.get_lines()) == 2 * n_runs
    for ax in (loss_ax, acc_ax):
        box = ax.get_position()
        assert box.width > 0.2 and box.height > 0.5  # the axes keep most of their room


def test_training_curves_of_ten_runs_name_each_run():
    runs = [(f"run-{k}", [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.4}]) for k in range(10)]
    fig = F.training_curves(runs)
    assert len(fig.axes[0].get_legend().get_texts()) == 10 and len(fig.axes[1].get_legend().get_texts()) == 20


def test_save_figure_writes_each_format_atomically(files, tmp_path):
    fig = F.cka_figure(CKAResult.load(files["time"]))
    written = F.save_figure(fig, tmp_path / "time.png", F.parse_formats("png, pdf,svg"))
    assert [p.name for p in written] == ["time.png", "time.pdf", "time.svg"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written[1].read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in written[2].read_bytes()[:2000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["time.pdf", "time.png", "time.svg"]  # no temporaries

def test_same_result_gives_the_same_svg_bytes(files, tmp_path):
    """No date or random id inside: a figure redrawn from the same file is the same file."""
    a, b = (F.save_figure(F.cka_figure(CKAResult.load(files["time"])), tmp_path / f"{k}.svg")[0] for k in "ab")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("text,needle", [
    pytest.param("gif", "unknown figure format gif; choose from", id="gif"),
    pytest.param("png,jpeg", "unknown figure format jpeg; choose from", id="png,jpeg"),
    pytest.param(",", "--format ',' has an empty item", id=","),
])
def test_unknown_figure_format_is_refused(text, needle):
    with pytest.raises(SuiteError, match=re.escape(needle)):
        F.parse_formats(text)


def test_figures_stay_out_of_pyplot(files):
    """Built without pyplot: nothing piles up in its registry (a long report would leak)."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    F.cka_figure(CKAResult.load(files["models"]))
    F.training_curves([("x", load_checkpoint(files["snn.pt"]).metrics)])
    assert plt.get_fignums() == before


def test_figure_renders_to_png_for_every_type(files, tmp_path):
    """Every figure type draws completely (savefig runs the whole layout)."""
    figs = {
        "heatmap": F.cka_heatmap(CKAResult.load(files["models"])),
        "grid": F.temporal_grid(CKAResult.load(files["time"])),
        "robustness": F.robustness_curves([("SNN", read_summary(files["snn-store"]).rows)]),
        "clean-adv": F.clean_adv_lines([CKAResult.load(files["clean-adv-2/255"])]),
        "static-event": F.static_event_diagonal(CKAResult.load(files["static-event"])),
        "training": F.training_curves([("snn", load_checkpoint(files["snn.pt"]).metrics)]),
    }
    for name, fig in figs.items():
        path, = F.save_figure(fig, tmp_path / f"{name}.png")
        assert path.stat().st_size > 5000, name


def test_long_title_wraps_inside_the_figure(files):
    """A title of two long model names is broken at spaces, not clipped at the figure's edges."""
    title = "CKA static-event: digits-resnet20-snn-T4-w0.5-s0 vs digits-dvs-resnet20-snn-T4-w0.5-s0"
    fig = F.cka_heatmap(CKAResult.load(files["static-event"]), title)
    fig.canvas.draw()
    text = fig._suptitle
    lines = text.get_text().split("\n")
    assert len(lines) == 2 and " ".join(lines) == f"{title} (48 samples)"
    box = text.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
