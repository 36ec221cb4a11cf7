"""The demo pipeline end to end, on tiny settings (the real settings run in `suite demo`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import suite.demo as demo
from tests.conftest import cli


@pytest.fixture
def tiny_demo(monkeypatch):
    monkeypatch.setattr(demo, "DEMO", replace(demo.DEMO, size=8, width=0.25, timesteps=2, epochs=1,
                                              batch_size=256))
    monkeypatch.setattr(demo, "CKA_SAMPLES", 32)
    monkeypatch.setattr(demo, "CKA_BATCH", 16)
    monkeypatch.setattr(demo, "ATTACK", {**demo.ATTACK, "samples": 16, "batch_size": 16, "steps": 2})


def test_demo_runs_every_stage_and_writes_under_out(runner, tmp_path, tiny_demo):
    code, out = cli(runner, "demo", "--out", tmp_path, "--data-root", tmp_path / "data")
    assert code == 0, out
    assert len(list((tmp_path / "runs").glob("*.pt"))) == 3  # SNN, ANN, SNN on events
    assert len(list((tmp_path / "attacks").glob("*.h5"))) == 2
    reports = {p.name for p in (tmp_path / "reports").glob("*.h5")}
    assert any(n.startswith("cka-models-") for n in reports)
    assert any(n.startswith("cka-time-") for n in reports)
    assert any(n.startswith("cka-static-event-") for n in reports)
    assert sum(n.startswith("cka-clean-adv-") for n in reports) == 2
    for needle in ("test accuracy", "robustness: SNN", "robustness: ANN", "clean vs adv CKA: SNN", "demo finished"):
        assert needle in out


def test_demo_rejects_out_that_is_a_file(runner, tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    code, out = cli(runner, "demo", "--out", target)
    assert code == 2 and "is not a folder" in out and target.read_text() == "x"


@pytest.mark.slow
def test_demo_settings_reach_accuracy_well_above_chance(tmp_path):
    """The demo's real training settings: both twins far above the 10% chance level on digits."""
    from suite.workflows import train_one

    for kind in ("snn", "ann"):
        result = train_one(replace(demo.DEMO, kind=kind), device="cpu", data_root=tmp_path, out=tmp_path,
                           show_progress=False)
        assert result.test_accuracy > 0.8, (kind, result.metrics)
