"""`suite experiment`: recipes checked key by key, checkpoints and steps reused, findings
measured from the result files."""

from __future__ import annotations

import html
import json
import re
from functools import cache

import pytest
import torch

from suite.errors import SuiteError
from suite.experiments import load_recipe, recipe_names, run_experiment
from suite.experiments import runner as runner_module
from suite.experiments import steps as steps_module
from suite.experiments.intervals import Interval, verdict
from suite.experiments.measures import (Source, diagonal_series, periodic_pattern, periodicity, residual_ann_likeness,
                                        time_first_vs_last)
from suite.experiments.recipe import parse_recipe
from suite.models import build_model
from suite.results.cka import CKAResult
from suite.results.experiment import read_experiment
from suite.train import Optimisation
from suite.where import Where
from tests.support.helpers import assert_one_line_error, cli, make_checkpoint, tiny_model_config

SHIPPED = ("width-depth", "residual", "temporal", "event", "adversarial", "all")


def tiny_temporal(**changes):
    """A temporal recipe small enough for a test: ResNet-20 at width 0.25 on 8x8 digits, T=2,
    one epoch, CKA on 16 samples."""
    raw = {"recipe": "temporal", "name": "tiny", "seeds": [0], "protocol": "suite",
           "data": {"dataset": "digits", "size": 8},
           "train": {"arch": "resnet20", "width": 0.25, "timesteps": [2], "epochs": 1},
           "cka": {"samples": 16, "batch_size": 8, "measures": ["linear-cka"]},
           "finding": [{"key": "deeper", "measure": "time-first-vs-last", "claim": "reports that deeper layers change more",
                        "source": "abstract", "rule": "below", "margin": 0.05}]}
    for key, value in changes.items():
        raw[key] = value
    return parse_recipe(raw, "tiny test recipe")


@cache
def blocks_of(arch: str = "resnet20") -> tuple[str, ...]:
    """The block names of a tiny `arch` twin, as the runner gives them to the measures."""
    return tuple(b.name for b in build_model(tiny_model_config(arch=arch)).blocks())


def on_cpu(out):
    """Where a test's experiment runs: OUT on the CPU, no progress bars."""
    return Where(out=out, device="cpu", show_progress=False)


# ----------------------------------------------------------------------------- recipes
def test_every_recipe_of_the_issue_is_shipped_and_valid():
    assert set(SHIPPED) <= set(recipe_names())
    for name in SHIPPED:
        recipe = load_recipe(name)
        assert recipe.kind == name
        assert recipe.recipes if name == "all" else recipe.findings


def test_all_runs_every_other_recipe():
    assert set(load_recipe("all").recipes) == set(SHIPPED) - {"all"}


@pytest.mark.parametrize("toml, needle", [
    ('recipe = "temporal"\ncolour = "red"\n', "unknown key 'colour'"),
    ('recipe = "temporal"\n[train]\nepoch = 3\n', "unknown key [train] epoch"),
    ('recipe = "temporal"\n[train]\narch = "resnet21"\n', "[train] unknown architecture 'resnet21'"),
    ('recipe = "temporal"\n[train]\nepochs = "many"\n', "[train] --epochs must be a whole number, got 'many'"),
    ('recipe = "temporal"\n[train]\nepochs = 0\n', "[train] --epochs must be a whole number from 1 to 100000, got 0"),
    ('recipe = "temporal"\n[data]\ndataset = "imagenet"\n', "[data] unknown dataset 'imagenet'"),
    ('recipe = "temporal"\n[data]\ndataset = "digits-dvs"\n', "is event data"),
    ('recipe = "sideways"\n', "recipe = 'sideways' is not one of"),
    ('recipe = "temporal"\n[grid]\nwidths = [1.0]\n', "section [grid] does not apply"),
    ('recipe = "residual"\n[train]\narch = "vgg11"\n', "needs ResNet"),
    ('recipe = "adversarial"\n[attack]\neps = ["8/0"]\n', "[attack] eps '8/0' divides by zero"),
    ('recipe = "adversarial"\n[attack]\nmethods = ["cw"]\n', "[attack] unknown attack method 'cw'"),
    ('recipe = "temporal"\n[[finding]]\nkey = "k"\nmeasure = "checkerboard"\nclaim = "c"\nsource = "s"\nrule = "none"\n',
     "finding 1: measure 'checkerboard' is not one of recipe 'temporal'"),
    ('recipe = "temporal"\n[[finding]]\nkey = "k"\nmeasure = "time-first-vs-last"\nclaim = "c"\nsource = "s"\n'
     'rule = "maybe"\n', "finding 1: unknown rule 'maybe'"),
    ('recipe = "temporal"\n[[finding]]\nkey = "k"\nmeasure = "time-first-vs-last"\nclaim = "c"\nsource = "s"\n'
     'rule = "above"\n', "needs a margin"),
    ('recipe = "temporal"\n[train\n', "not valid TOML"),
    ('recipe = "temporal"\nseeds = "0,1"\n', "seeds = '0,1' should be a non-empty list of whole numbers"),
    ('recipe = "temporal"\nprotocol = ["suite", "paper"]\n', "unknown protocol 'paper'"),
    ('recipe = "temporal"\n[cka]\nmeasures = ["linear-cka", "cosine"]\n', "[cka] unknown measure 'cosine'"),
])
def test_bad_recipe_is_one_error_line_and_exit_2(runner, tmp_path, toml, needle):
    path = tmp_path / "mine.toml"
    path.write_text(toml)
    with pytest.raises(SuiteError) as err:
        load_recipe(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    code, out = cli(runner, "experiment", path, "--models", tmp_path / "runs", "--out", tmp_path / "out")
    assert_one_line_error(code, out, "error:", needle)
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_unknown_experiment_name_lists_the_recipes(runner):
    code, out = cli(runner, "experiment", "widths")
    assert_one_line_error(code, out, "unknown experiment 'widths'", "temporal")


def test_show_prints_a_recipe_that_loads_back(runner, tmp_path):
    code, out = cli(runner, "experiment", "residual", "--show")
    assert code == 0, out
    (tmp_path / "copy.toml").write_text(out.replace('name = "residual"', 'name = "my-residual"'))
    assert load_recipe(tmp_path / "copy.toml").name == "my-residual"


def test_overrides_take_a_recipe_to_other_settings():
    recipe = load_recipe("event", {"dataset": "caltech101", "arch": "resnet38", "epochs": 3, "width": 1.0,
                                   "timesteps": [8]})
    assert recipe.event_dataset == "ncaltech101"
    assert recipe.train.model.arch == "resnet38"
    assert (recipe.train.optim.epochs, recipe.train.model.width) == (3, 1.0)
    assert recipe.train.model.timesteps == 8
    assert load_recipe("temporal", {"timesteps": [2, 16]}).timesteps == (2, 16)
    with pytest.raises(SuiteError, match="one value"):
        load_recipe("residual", {"timesteps": [2, 4]})


def test_bad_timesteps_option_is_one_error_line(runner):
    code, out = cli(runner, "experiment", "temporal", "--timesteps", "2,x")
    assert_one_line_error(code, out, "--timesteps '2,x'")


# ----------------------------------------------------------------------------- verdicts and measures
@pytest.mark.parametrize("rule, lo, hi, expected", [
    ("above", 0.06, 0.30, "agrees"), ("above", -0.30, -0.06, "disagrees"), ("above", 0.04, 0.30, "inconclusive"),
    ("above", -0.30, -0.04, "inconclusive"), ("below", -0.30, -0.06, "agrees"), ("below", 0.06, 0.30, "disagrees"),
    ("below", -0.10, 0.10, "inconclusive"), ("none", -0.9, -0.8, "inconclusive"), ("above", None, None, "inconclusive"),
])
def test_verdict_reads_the_whole_interval_against_the_margin(rule, lo, hi, expected):
    mean = None if lo is None else (lo + hi) / 2
    assert verdict(rule, Interval((mean,), mean, lo, hi, "test"), 0.05) == expected


def time_result(first_off: float, last_off: float, T: int = 3) -> CKAResult:
    """A time comparison over layers conv1, layer1.0, layer3.2 whose off-diagonal entries are
    the given values (diagonal 1)."""
    mats = []
    for off in (0.2, first_off, last_off):
        m = torch.full((T, T), off, dtype=torch.float64)
        m.fill_diagonal_(1.0)
        mats.append(m)
    matrix = torch.stack(mats)
    names = ["conv1", "layer1.0", "layer3.2"]
    return CKAResult(matrix=matrix, layers_a=names, layers_b=names, n_samples=16, hsic_ab=matrix.clone(),
                     hsic_aa=torch.ones(3, T), hsic_bb=torch.ones(3, T), compare="time", time="each")


def measure_of(fn, results: dict[str, CKAResult], places: dict | None = None, arch: str = "resnet20"):
    """`fn` on the linear-CKA matrices of `results` (by role), as the runner calls it."""
    srcs = {role: Source(r, None, blocks_of(arch), tuple((places or {}).get(role, ()))) for role, r in results.items()}
    return fn(lambda role: srcs[role].result.matrix, srcs)


def test_temporal_finding_follows_the_result_file(tmp_path):
    path = time_result(0.9, 0.5).save(tmp_path / "t.h5", command="test")
    m = measure_of(time_first_vs_last, {"time": CKAResult.load(path)})
    assert m["first_block"] == pytest.approx(0.9) and m["last_block"] == pytest.approx(0.5)
    assert m["d"] == pytest.approx(-0.4)
    time_result(0.6, 0.95).save(path, command="test")  # same file, other numbers
    assert measure_of(time_first_vs_last, {"time": CKAResult.load(path)})["d"] == pytest.approx(0.35)


def periodic_matrix(n: int, pattern: bool) -> torch.Tensor:
    """n layers: 0.9 / 0.3 by parity of the distance (pattern), else 0.9 ** distance (smooth)."""
    f = (lambda i, j: 1.0 if i == j else 0.9 if (i - j) % 2 == 0 else 0.3) if pattern else (lambda i, j: 0.9 ** abs(i - j))
    return torch.tensor([[f(i, j) for j in range(n)] for i in range(n)], dtype=torch.float64)


def layers_result(m: torch.Tensor) -> CKAResult:
    names = [f"l{i}" for i in range(m.shape[0])]
    return CKAResult(matrix=m, layers_a=names, layers_b=names, n_samples=8, hsic_ab=m,
                     hsic_aa=torch.ones(m.shape[0]), hsic_bb=torch.ones(m.shape[0]), compare="layers")


TWO_PER_BLOCK = tuple((i // 2, "ab"[i % 2]) for i in range(8))  # 4 blocks of places a, b


def test_periodicity_contrast_on_a_hand_made_pattern(tmp_path):
    # 4 blocks of 2 layers; same place in the next block (distance 2) -> 0.9; the partner's
    # neighbour in that block (distance 1 or 3) -> 0.3; contrast 0.9 - 0.3 = 0.6
    src = Source(layers_result(periodic_matrix(8, True)), tmp_path, (), TWO_PER_BLOCK)
    p = periodicity(src.result.matrix, src)
    assert (p["same_place"], p["one_off"], p["contrast"]) == pytest.approx((0.9, 0.3, 0.6))
    # a smooth decay with distance (0.9 ** |i - j|) has no period: same place 0.81; the partner's
    # neighbours lie at distance 3 (place a: 0.729) and 1 (place b: 0.9), mean 0.8145: -0.0045
    src = Source(layers_result(periodic_matrix(8, False)), tmp_path, (), TWO_PER_BLOCK)
    assert periodicity(src.result.matrix, src)["contrast"] == pytest.approx(-0.0045)


def test_periodicity_keeps_places_across_a_block_with_an_extra_layer(tmp_path):
    """Block 1 holds a shortcut between its a and b: the same place is still a-a and b-b, and the
    shortcut is a neighbour, not a partner. Matrix: 0.9 at the same place, 0.3 elsewhere."""
    places = ((0, "a"), (0, "b"), (1, "a"), (1, "shortcut"), (1, "b"), (2, "a"), (2, "b"))
    m = torch.tensor([[1.0 if i == j else 0.9 if places[i][1] == places[j][1] else 0.3 for j in range(7)]
                      for i in range(7)], dtype=torch.float64)
    src = Source(layers_result(m), tmp_path, (), places)
    p = periodicity(m, src)
    assert (p["same_place"], p["one_off"]) == pytest.approx((0.9, 0.3))


def models_result(diag: list[float], off: float = 0.1) -> CKAResult:
    """An SNN-vs-ANN comparison over conv1, layer1.0, layer2.0 with the given diagonal."""
    names = ["conv1", "layer1.0", "layer2.0"]
    m = torch.full((3, 3), off, dtype=torch.float64)
    m[range(3), range(3)] = torch.tensor(diag, dtype=torch.float64)
    return CKAResult(matrix=m, layers_a=names, layers_b=names, n_samples=8, hsic_ab=m, hsic_aa=torch.ones(3),
                     hsic_bb=torch.ones(3))


def test_residual_ann_likeness_compares_the_mean_diagonals():
    # with residuals: diagonal 0.9, 0.8, 0.7 -> mean 0.8; without: 0.6, 0.3, 0.0 -> mean 0.3;
    # d = 0.8 - 0.3 = +0.5 (off-diagonal 0.1 ignored)
    res, nores = models_result([0.9, 0.8, 0.7]), models_result([0.6, 0.3, 0.0])
    m = measure_of(residual_ann_likeness, {"with": res, "without": nores})
    assert m["mean_residual"] == pytest.approx(0.8) and m["mean_no_residual"] == pytest.approx(0.3)
    assert m["d"] == pytest.approx(0.5)
    # the other way round: residual connections making twins less alike gives d < 0 (rule "above" disagrees)
    assert measure_of(residual_ann_likeness, {"with": nores, "without": res})["d"] == pytest.approx(-0.5)


def test_periodic_pattern_judges_the_residual_snn():
    # with residuals: period 2 -> contrast 0.6 (d); without: smooth -> -0.0045, quoted but not d
    periodic, smooth = layers_result(periodic_matrix(8, True)), layers_result(periodic_matrix(8, False))
    places = {"with": TWO_PER_BLOCK, "without": TWO_PER_BLOCK}
    m = measure_of(periodic_pattern, {"with": periodic, "without": smooth}, places)
    assert m["d"] == pytest.approx(0.6)
    assert m["contrast_no_residual"] == pytest.approx(-0.0045)
    assert (m["same_place_residual"], m["one_off_residual"]) == pytest.approx((0.9, 0.3))
    assert measure_of(periodic_pattern, {"with": smooth, "without": periodic}, places)["d"] == pytest.approx(-0.0045)


def test_diagonal_series_quotes_each_result():
    results = {}
    for label, value in (("resnet20", 0.8), ("resnet38", 0.5)):
        m = torch.full((3, 3), 0.1, dtype=torch.float64)
        m.fill_diagonal_(value)
        results[label] = CKAResult(matrix=m, layers_a=["conv1", "layer1.0", "layer2.0"],
                                   layers_b=["conv1", "layer1.0", "layer2.0"], n_samples=8, hsic_ab=m,
                                   hsic_aa=torch.ones(3), hsic_bb=torch.ones(3))
    m = measure_of(diagonal_series, results)
    assert m["d"] == pytest.approx(-0.3)
    assert (m["mean_resnet20"], m["mean_resnet38"]) == pytest.approx((0.8, 0.5))


# ----------------------------------------------------------------------------- running recipes
def test_matching_checkpoint_is_reused_and_findings_come_from_the_result_file(tmp_path, monkeypatch):
    """A checkpoint with the recipe's model, data and training config is used as is (whatever
    its name); a second run redoes no step; editing the result file changes the finding."""
    models, out = tmp_path / "runs", tmp_path / "out"
    ckpt = make_checkpoint(models / "someone-elses-name.pt", "snn", size=8, timesteps=2, width=0.25)
    before = ckpt.stat().st_mtime_ns
    monkeypatch.setattr(steps_module, "train_one", lambda *a, **k: pytest.fail("trained instead of reusing"))
    first = run_experiment(tiny_temporal(), on_cpu(out), models=models)
    assert first.trained == [] and ckpt.stat().st_mtime_ns == before
    written = read_experiment(first.path)
    assert written.files["checkpoints"] == [ckpt]
    result_path = out / "cka-time-someone-elses-name-default-suite.h5"
    (finding,) = written.findings
    assert finding.key == "deeper-T2" and finding.files == [result_path]
    assert written.files["results"] == [result_path] and result_path.with_suffix(".png") in written.files["figures"]
    result = CKAResult.load(result_path)
    blocks = [n for n in result.layers_a if n.startswith("layer") and n.count(".") == 1]
    first_off = float(result.matrix[result.layers_a.index(blocks[0])][0, 1])  # T=2: the one pair t0, t1
    # the mean of entries (0, 1) and (1, 0), equal up to float64 HSIC sums of n² = 64 terms: <= n² u = 7e-15
    assert finding.measured["first_block"] == pytest.approx(first_off, abs=1e-12)

    monkeypatch.setattr(runner_module, "run_cka", lambda *a, **k: pytest.fail("CKA rerun"))
    second = run_experiment(tiny_temporal(), on_cpu(out), models=models)
    assert [f.sentence for f in second.experiment.findings] == [finding.sentence]

    # make the last block nearly static over time (0.97) and the first block changing (0.40), in
    # every minibatch: d = 0.97 - 0.40 = +0.57, its whole interval above 0.05: rule "below" disagrees
    for name, off in ((blocks[0], 0.40), (blocks[-1], 0.97)):
        l = result.layers_a.index(name)
        result.matrix[l] = torch.tensor([[1.0, off], [off, 1.0]], dtype=torch.float64)
        batches = result.batches["linear-cka"]
        batches["hsic_ab"][:, l] = result.matrix[l]  # self-HSIC 1: CKA = HSIC in every batch
        batches["hsic_aa"][:, l] = batches["hsic_bb"][:, l] = 1.0
    result.save(result_path, command="edited by the test")
    third = run_experiment(tiny_temporal(), on_cpu(out), models=models)
    (edited,) = third.experiment.findings
    assert (edited.measured["first_block"], edited.measured["last_block"]) == pytest.approx((0.40, 0.97))
    assert "in the first block 0.40 vs the last 0.97 (d = last - first): d = +0.57 [95% CI +0.57, +0.57]" \
        in edited.sentence
    assert edited.verdict == "disagrees"


def test_other_training_config_is_not_reused(tmp_path, monkeypatch):
    models = tmp_path / "runs"
    make_checkpoint(models / "digits-resnet20-snn-T2-w0.25-s0.pt", "snn", size=8, timesteps=2, width=0.25)
    calls = []

    def fake_train(config, where, **kw):
        calls.append((config, where, kw))
        raise SuiteError("stop here")

    monkeypatch.setattr(steps_module, "train_one", fake_train)
    with pytest.raises(SuiteError, match="stop here"):
        run_experiment(tiny_temporal(train={"arch": "resnet20", "width": 0.25, "timesteps": [2], "epochs": 2}),
                       on_cpu(tmp_path / "out"), models=models)
    (config, where, kw), = calls
    assert config.optim.epochs == 2 and kw["resume"] is False and where.out == models
    # the name is taken by the 1-epoch run, so the new one gets a plan hash, never overwriting it
    assert re.fullmatch(r"digits-resnet20-snn-T2-w0\.25-s0-[0-9a-f]{8}", kw["name"]), kw["name"]


def test_unfinished_checkpoint_of_the_same_plan_is_resumed(tmp_path, monkeypatch):
    from suite.checkpoint import save_checkpoint

    recipe = tiny_temporal(train={"arch": "resnet20", "width": 0.25, "timesteps": [2], "epochs": 3})
    config = recipe.train.variant(kind="snn", timesteps=2)
    assert config.optim == Optimisation(epochs=3)
    save_checkpoint(tmp_path / "runs" / "half.pt", config.model_config, config.data, config.optim.to_dict(), 1, [],
                    {"model": build_model(config.model_config).state_dict()})
    calls = []

    def fake_train(config, where, **kw):
        calls.append(kw)
        raise SuiteError("stop here")

    monkeypatch.setattr(steps_module, "train_one", fake_train)
    with pytest.raises(SuiteError, match="stop here"):
        run_experiment(recipe, on_cpu(tmp_path / "out"), models=tmp_path / "runs")
    (kw,) = calls
    assert kw["resume"] is True and kw["name"] == "half"


@pytest.mark.slow
def test_tiny_recipe_end_to_end_then_reused(tmp_path, monkeypatch):
    """First run trains (one epoch) and measures; the second trains nothing (the checkpoint's
    mtime is unchanged) and gives the same findings."""
    models, out = tmp_path / "runs", tmp_path / "out"
    first = run_experiment(tiny_temporal(), on_cpu(out), models=models)
    (ckpt,) = first.trained
    assert ckpt == models / "digits-resnet20-snn-T2-w0.25-s0.pt"
    stamp = ckpt.stat().st_mtime_ns
    written = read_experiment(first.path)
    assert written.recipe == "tiny" and written.config["train"]["timesteps"] == [2]
    assert [f.key for f in written.findings] == ["deeper-T2"]
    monkeypatch.setattr(steps_module, "train_one", lambda *a, **k: pytest.fail("retrained"))
    second = run_experiment(tiny_temporal(), on_cpu(out), models=models)
    assert second.trained == [] and ckpt.stat().st_mtime_ns == stamp
    assert [f.sentence for f in second.experiment.findings] == [f.sentence for f in written.findings]


def test_cli_prints_every_finding_and_writes_the_page(runner, tmp_path):
    """Every finding sentence is printed; the page beside the findings file holds each one,
    the CKA result, the checkpoint's training curves (from the models folder), each figure
    inline, and no URL."""
    models, out = tmp_path / "runs", tmp_path / "out"
    make_checkpoint(models / "snn.pt", "snn", size=8, timesteps=2, width=0.25)
    recipe = tmp_path / "tiny.toml"
    recipe.write_text('recipe = "temporal"\nname = "tiny"\nseeds = [0]\nprotocol = "suite"\n[data]\nsize = 8\n'
                      '[train]\nwidth = 0.25\ntimesteps = [2]\nepochs = 1\n'
                      '[cka]\nsamples = 16\nbatch_size = 8\nmeasures = ["linear-cka"]\n'
                      '[[finding]]\nkey = "k"\nmeasure = "time-first-vs-last"\nclaim = "reports x"\n'
                      'source = "abstract"\nrule = "below"\nmargin = 0.05\n')
    code, text = cli(runner, "experiment", recipe, "--models", models, "--out", out, "--device", "cpu")
    assert code == 0, text
    written = read_experiment(out / "experiment-tiny.json")
    assert written.findings and json.loads((out / "experiment-tiny.json").read_text())["recipe"] == "tiny"
    for finding in written.findings:
        assert f"- {finding.sentence}" in text
    page = out / "experiment-tiny.html"
    assert f"report page: {page}" in text
    body = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))  # text as shown
    for finding in written.findings:
        assert finding.sentence in body
    (result,) = [p for p in written.files["results"] if p.suffix == ".h5"]
    assert result.name in body
    (ckpt,) = written.files["checkpoints"]
    assert ckpt.name in body and "training curves" in body.lower()
    assert page.read_text().count("data:image/png;base64,") >= 2  # the time-step heatmap and the training curves
    assert re.search(r"(src|href)=[\"']?https?:", page.read_text()) is None


def test_all_checks_every_recipe_before_any_work(runner, tmp_path):
    """vgg11 suits temporal but not residual or width-depth: nothing may start."""
    code, out = cli(runner, "experiment", "all", "--arch", "vgg11", "--models", tmp_path / "runs",
                    "--out", tmp_path / "out")
    assert_one_line_error(code, out, "needs ResNet")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def test_finished_checkpoint_from_before_a_training_option_existed_is_reused(tmp_path, monkeypatch):
    """A checkpoint whose stored training config lacks an option added later (it ran with that
    option's default) still matches; one stored with another value does not."""
    from suite.checkpoint import save_checkpoint

    recipe = tiny_temporal()
    config = recipe.train.variant(kind="snn", timesteps=2)
    stored = config.optim.to_dict()
    newest = next(reversed(stored))  # the option added last
    old = {k: v for k, v in stored.items() if k != newest}
    save_checkpoint(tmp_path / "runs" / "old.pt", config.model_config, config.data, old, config.optim.epochs, [],
                    {"model": build_model(config.model_config).state_dict()})
    monkeypatch.setattr(steps_module, "train_one", lambda *a, **k: pytest.fail("trained instead of reusing"))
    ws = steps_module.Workspace(where=Where(out=tmp_path / "out"), models=tmp_path / "runs")
    assert ws.checkpoint(recipe.train.variant(kind="snn", timesteps=2)) == tmp_path / "runs" / "old.pt"
    # the same option stored with a value other than today's default: another run
    other = dict(stored, lr=stored["lr"] * 2)
    save_checkpoint(tmp_path / "runs" / "old.pt", config.model_config, config.data, other, config.optim.epochs, [],
                    {"model": build_model(config.model_config).state_dict()})
    with pytest.raises(pytest.fail.Exception, match="trained instead"):
        steps_module.Workspace(where=Where(out=tmp_path / "out"), models=tmp_path / "runs").checkpoint(
            recipe.train.variant(kind="snn", timesteps=2))


@pytest.mark.parametrize("protocol, runs", [("snncka", 1), ("suite", 2)])
def test_a_comparison_on_the_same_layer_set_runs_once(tmp_path, monkeypatch, protocol, runs):
    """SNNCKA hooks one layer set for whole models and for the pattern inside the blocks, so the
    checkerboard's block-layer comparison is the whole-model one: computed once, one file. The
    suite protocol's two sets differ: two runs."""
    from types import SimpleNamespace

    from suite.experiments.plans import Comparison
    from suite.experiments.protocols import PROTOCOLS
    from suite.experiments.runner import Lab
    from suite.experiments.steps import Workspace

    rec = tiny_temporal()
    snn, ann = rec.train.variant(kind="snn"), rec.train.variant(kind="ann")
    files = {snn: make_checkpoint(tmp_path / "snn.pt", "snn", size=8, timesteps=2, width=0.25),
             ann: make_checkpoint(tmp_path / "ann.pt", "ann", size=8, width=0.25)}
    ws = Workspace(where=on_cpu(tmp_path / "out"), models=tmp_path / "runs")
    monkeypatch.setattr(ws, "checkpoint", files.__getitem__)
    calls = []

    def fake_cka(config, inputs, where, name):
        calls.append(config.layers)
        path = where.out / f"{name}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("result")
        return SimpleNamespace(path=path)

    monkeypatch.setattr(runner_module, "run_cka", fake_cka)
    lab = Lab(rec, ws)
    paths = {lab.cka(Comparison("models", snn, ann, layers=which), PROTOCOLS[protocol]) for which in ("default", "fine")}
    assert len(calls) == len(paths) == runs
