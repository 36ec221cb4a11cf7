"""The attack a run makes without --method (issue 28): the strongest single white-box attack for
the model's kind, and a note, in the robustness table itself, that a single attack's number is an
upper bound, with the command that gives one to quote."""

from __future__ import annotations

import pytest

from suite.attacks import AttackConfig
from suite.defaults import ATTACK_DEFAULT
from suite.results.attacks import quote_note, read_store
from tests.support.helpers import cli, make_checkpoint


@pytest.mark.parametrize("snn, given, methods, grad", [
    (True, {}, ("sa-pgd",), "assg"),  # the default attack brings its own gradient mode
    (False, {}, ("apgd-ce",), "bptt"),  # an ANN's exact gradient
    (True, {"grad": "hart"}, ("sa-pgd",), "hart"),  # --grad alone keeps the default method
    (True, {"methods": ("pgd",)}, ("pgd",), "bptt"),  # a named method: bptt, as before
    (True, {"attack_surrogates": ("pcw:0.5",)}, ("sa-pgd",), "bptt"),  # a surrogate asks for bptt
    (True, {"methods": ("fgsm",), "grad": "rga"}, ("fgsm",), "rga"),  # both given: as is
])
def test_an_unset_method_or_gradient_is_filled_in_for_the_model(snn, given, methods, grad):
    config = AttackConfig(**given).for_model(snn)
    assert (config.methods, config.grad) == (methods, grad)
    assert config.for_model(not snn) == config  # a concrete config stays as it is


def test_the_defaults_table_names_the_attacks_the_help_promises():
    assert ATTACK_DEFAULT == {"snn": ("sa-pgd", "assg"), "ann": ("apgd-ce", "bptt")}


@pytest.mark.parametrize("kind, method, grad, quote", [("snn", "sa-pgd", "assg", "ensemble"),
                                                        ("ann", "apgd-ce", "exact (ann)", "autoattack")])
def test_the_first_command_a_newcomer_types_runs_the_default_and_says_it_is_an_upper_bound(
        runner, tmp_path, kind, method, grad, quote):
    model = make_checkpoint(tmp_path / f"{kind}.pt", kind)
    code, out = cli(runner, "attack", "--model", model, "--eps", "8/255", "--samples", 8, "--batch-size", 8,
                    "--iterations", 2, "--out", tmp_path / "attacks")
    assert code == 0, out
    store = read_store(tmp_path / "attacks" / f"{kind}-{method}-{'assg' if kind == 'snn' else 'bptt'}.h5")
    assert store.methods == [method] and store.config["gradient"]["grad"] == grad
    text = " ".join(out.split())  # the note wraps under the table
    assert "upper bound:" in text
    assert f"suite attack --model {model} --method {quote} --eps 8/255" in text


def _config(kind="snn", methods=("sa-pgd",), grad="assg", budget="standard", standard=True):
    budgets = {"ensemble": {"budget": budget}, "autoattack": {"standard": standard}}
    return {"kind": kind, "checkpoint": "runs/m.pt", "attack": {"methods": list(methods), "grad": grad,
                                                               "eps": [0.0, 4 / 255]},
            "budgets": {m: budgets[m] for m in methods if m in budgets}}


@pytest.mark.parametrize("config, quotable", [
    (_config("snn", ("ensemble",)), True),
    (_config("snn", ("ensemble", "square", "worst")), True),
    (_config("snn", ("ensemble",), budget="quick"), False),  # Square gets 1000 queries
    (_config("snn", ("autoattack",)), False),  # on an SNN, AutoAttack's single gradient is not enough
    (_config("ann", ("autoattack",)), True),
    (_config("ann", ("autoattack",), standard=False), False),
    (_config("ann", ("ensemble",)), True),  # on an ANN it folds to APGD-CE, APGD-T and Square
    (_config("snn", ("ensemble",), grad="transfer"), False),  # a transfer attack is never the number
    (_config("snn", ("sa-pgd", "square")), False),
])
def test_only_a_standard_composite_with_square_is_a_number_to_quote(config, quotable):
    note = quote_note(config)
    assert (note is None) == quotable
    if note:
        assert note.endswith(("--eps 4/255 (its standard budget)", "--eps 4/255"))


def _events(methods):
    return {"kind": "snn", "checkpoint": "runs/m.pt", "attack": {"methods": list(methods), "threat": "events",
                                                                "events": [0, 10, 50]}}


@pytest.mark.parametrize("methods, says", [
    (("event-pgd", "event-sparse"), None),
    (("event-pgd", "event-random"), "finds some of the recordings' weaknesses, not all; for a robust accuracy"),
    (("event-retime", "event-random-retime"), "weaknesses to retiming, not all (the suite has no stronger"),
])
def test_an_event_store_names_the_attacks_to_quote_and_a_retiming_store_its_own_threat(methods, says):
    """The worst case of event-pgd and event-sparse is the number to quote for events added and
    removed; a store of retiming alone is an upper bound on a threat of its own."""
    note = quote_note(_events(methods))
    assert (note is None) == (says is None)
    if note:
        assert says in note and note.endswith("--method event-pgd,event-sparse --events 0,10,50 (the worst case of both)")


def test_the_report_page_carries_the_note(runner, tmp_path):
    model = make_checkpoint(tmp_path / "ann.pt", "ann")
    cli(runner, "attack", "--model", model, "--method", "fgsm", "--samples", 8, "--out", tmp_path / "attacks")
    code, out = cli(runner, "report", tmp_path / "attacks", "--html", tmp_path / "page.html")
    assert code == 0, out
    page = (tmp_path / "page.html").read_text()
    assert f"upper bound: fgsm alone finds some of the model&#39;s weaknesses, not all; for a robust accuracy " \
           f"to quote run suite attack --model {model} --method autoattack --eps 8/255" in page
