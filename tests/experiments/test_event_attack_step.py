"""The event experiment's adversarial step (issue 30): its [attack] section is the event threat
model, its two findings (rule none: the paper makes no claim about event-stream attacks) read
the clean-vs-adversarial CKA of the event twins, and the page shows robustness in events."""

from __future__ import annotations

import pytest

from suite.errors import SuiteError
from suite.experiments import load_recipe, run_experiment
from suite.experiments.plans import plan_findings
from suite.experiments.recipe import parse_recipe
from suite.results.attacks import read_store
from tests.experiments.test_experiments import on_cpu


def test_the_event_recipe_attacks_event_streams_with_findings_of_no_rule():
    recipe = load_recipe("event")
    assert (recipe.attack.threat, recipe.attack.events) == ("events", (0, 10, 50))
    assert set(recipe.attack.methods) == {"event-pgd", "event-sparse", "event-random"}
    adv = [p for p in plan_findings(recipe) if p.spec.measure.startswith("adv-")]
    assert [p.spec.key for p in adv] == ["event-attack-snn-vs-ann", "event-attack-layerwise"]
    assert all(p.spec.rule == "none" for p in adv)
    assert {c.a.data.name for p in adv for c in p.roles.values()} == {"digits-dvs"}  # the event twins
    assert all(c.compare == "clean-adv" and c.attack.threat == "events" for p in adv for c in p.roles.values())


@pytest.mark.parametrize("kind, attack, needle", [
    ("event", {"eps": ["8/255"]}, "[attack] eps does not apply to recipe 'event'"),
    ("adversarial", {"events": [10]}, "[attack] events does not apply to recipe 'adversarial'"),
    ("event", {"methods": ["sa-pgd"]}, "sa-pgd is an attack on frames (--threat frames)"),
])
def test_an_attack_key_of_the_other_recipe_is_refused(kind, attack, needle):
    raw = {"recipe": kind, "attack": attack, "finding": []}
    with pytest.raises(SuiteError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_recipe(raw, "test recipe")


@pytest.mark.slow  # four tiny models trained, two attacked: 15 s
def test_a_tiny_event_recipe_runs_its_attack_step(tmp_path):
    raw = {"recipe": "event", "name": "tiny-event", "seeds": [0], "protocol": "suite",
           "data": {"dataset": "digits", "size": 8},
           "train": {"arch": "resnet20", "width": 0.25, "timesteps": 2, "epochs": 1},
           "cka": {"samples": 16, "batch_size": 8, "measures": ["linear-cka"]},
           "attack": {"events": [0, 5], "samples": 8, "batch_size": 8, "steps": 2},
           "finding": [{"key": "snn-vs-ann", "measure": "adv-snn-vs-ann", "claim": "no claim", "source": "none",
                        "rule": "none"}]}
    run = run_experiment(parse_recipe(raw, "tiny event recipe"), on_cpu(tmp_path / "out"), models=tmp_path / "runs")
    (finding,) = run.experiment.findings
    assert finding.verdict == "inconclusive" and "at 5 events: SNN robust accuracy" in finding.sentence
    stores = sorted((tmp_path / "out" / "attacks").glob("*.h5"))
    assert len(stores) == 2  # the SNN (its gradient mode) and the ANN (exact)
    for path in stores:
        store = read_store(path)
        assert store.threat == "events" and store.methods == ["event-pgd", "event-sparse", "event-random", "worst"]
        assert len(store.recordings("worst", 5)) == 8
    page = run.page.read_text()
    assert "robustness under event attacks" in page and "5 events" in page
