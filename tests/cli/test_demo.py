"""The demo pipeline end to end, on tiny settings (the real settings run in `suite demo`)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import pytest

import suite.demo as demo
from suite.where import Where
from tests.support.helpers import cli, tiny_train_config

# The demo's plan on tiny settings: its stages, attacks (fgsm, pgd and sa-pgd at its four eps,
# the SNN's through ASSG) and CKA comparisons unchanged, each on a tiny model, a few samples and
# few steps.
_SMALL = dict(samples=16, batch_size=16, steps=2, iterations=2)
TINY = replace(demo.DEMO, train=tiny_train_config(epochs=1, batch_size=256),
               attack=replace(demo.DEMO.attack, **_SMALL), snn_attack=replace(demo.DEMO.snn_attack, **_SMALL),
               cka=replace(demo.DEMO.cka, samples=32, batch_size=16))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One run of `suite demo` on tiny settings, shared by the tests that read what it wrote."""
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        # `run_demo`'s default plan is bound when it is defined, so patching demo.DEMO would not
        # reach it: the command (which imports run_demo when it runs) gets one that runs TINY
        mp.setattr(demo, "run_demo", partial(demo.run_demo, plan=TINY))
        code, text = cli(CliRunner(), "demo", "--out", out, "--data-root", out / "data")
    return out, code, text


def test_demo_runs_every_stage_and_writes_under_out(demo_run):
    tmp_path, code, out = demo_run
    assert code == 0, out
    assert len(list((tmp_path / "runs").glob("*.pt"))) == 3  # SNN, ANN, SNN on events
    assert len(list((tmp_path / "attacks").glob("*.h5"))) == 2
    reports = {p.name for p in (tmp_path / "reports").glob("*.h5")}
    assert any(n.startswith("cka-models-") for n in reports)
    assert any(n.startswith("cka-time-") for n in reports)
    assert any(n.startswith("cka-static-event-") for n in reports)
    assert sum(n.startswith("cka-clean-adv-") for n in reports) == 8  # SNN and ANN, eps 0, 2/255, 4/255, 8/255
    for needle in ("test acc", "robustness: SNN", "robustness: ANN", "clean vs adv CKA: SNN", "demo finished"):
        assert needle in out


def test_demo_attacks_the_snn_through_assg_and_reads_sa_pgd_examples(demo_run):
    """The SNN's store: fgsm, pgd and sa-pgd through the adaptive surrogate, and their worst case;
    the ANN's through its exact gradient; the clean-vs-adversarial CKA reads SA-PGD's examples."""
    from suite.results.attacks import read_store
    from suite.results.cka import CKAResult

    tmp_path, code, _ = demo_run
    stores = {p.name: read_store(p) for p in (tmp_path / "attacks").glob("*.h5")}
    snn = next(s for n, s in stores.items() if "-snn-" in n)
    ann = next(s for n, s in stores.items() if "-ann-" in n)
    assert snn.config["attack"]["grad"] == "assg" and ann.config["attack"]["grad"] == "bptt"
    for store in (snn, ann):
        assert {e.method for e in store.entries} == {"fgsm", "pgd", "sa-pgd", "worst"}
    clean_adv = [CKAResult.load(p) for p in (tmp_path / "reports").glob("cka-clean-adv-*.h5")]
    assert {r.config["method"] for r in clean_adv} == {"sa-pgd"}


def test_demo_attacks_at_four_eps_and_ends_with_its_page(demo_run):
    tmp_path, code, out = demo_run
    flat = " ".join(out.split())
    for eps in ("eps 0", "eps 2/255", "eps 4/255", "eps 8/255"):
        assert eps in flat, eps
    page = tmp_path / "reports" / "demo.html"
    assert out.rstrip().splitlines()[-1] == f"report: {page}"
    html = page.read_text()
    # by hand: training 1, robustness 1 (SNN and ANN together), SNN vs ANN 1, time 1,
    # static vs event 2 (heatmap, diagonal), clean vs adversarial 2 (SNN, ANN)
    assert html.count('src="data:image/png;base64,') == 8
    assert "http:" not in html and "https:" not in html


def test_demo_page_renders_in_chromium(demo_run, tmp_path):
    """The demo's page in headless Chromium, offline: not blank, and its figures drawn."""
    from tests.support.browser import need_chromium, screenshot, share_near

    need_chromium()
    out, code, _ = demo_run
    shot = screenshot(out / "reports" / "demo.html", tmp_path / "demo.png", tmp_path / "profile")
    assert shot.shape == (2000, 1280, 3)
    assert share_near(shot, (255, 255, 255)) < 0.98
    assert share_near(shot, (255, 127, 14)) > 1e-4  # the ANN's training curve (tab10 orange)


def test_demo_rejects_out_that_is_a_file(runner, tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    code, out = cli(runner, "demo", "--out", target)
    assert code == 2 and "is not a folder" in out and target.read_text() == "x"


@pytest.mark.slow
def test_demo_settings_reach_accuracy_well_above_chance(tmp_path):
    """The demo's real training settings: both twins far above the 10% chance level on digits."""
    from suite.train import train_one

    for kind in ("snn", "ann"):
        result = train_one(demo.DEMO.train.variant(kind=kind),
                           Where(tmp_path, device="cpu", data_root=tmp_path, show_progress=False))
        assert result.test_accuracy > 0.8, (kind, result.metrics)
