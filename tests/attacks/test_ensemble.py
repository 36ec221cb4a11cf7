"""The surrogate ensemble and SA-PGD inside runs: members, budgets, the per-sample worst case over
the members, and the masking verdict with the new modes; how a composite runs its members."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import suite.attacks.composite as composite
from suite.attacks import AttackConfig, predict, run_attacks, store_checks
from suite.attacks.checks import masking_verdict
from suite.attacks.composite import Member, composite_members, craft_composite, member_budget
from suite.attacks.methods import AUTOATTACK, BUDGETS, Budget, batch_seed, craft
from suite.attacks.plan import Attackers, plan_attacks
from tests.attacks.test_attacks import inputs, self_labelled, tiny_model
from tests.support.helpers import assert_one_line_error, cli, make_checkpoint

EPS = 8 / 255


def run(model, data, source=None, **kw):
    return run_attacks(model, data, AttackConfig(**{**dict(methods=("ensemble",), eps=(EPS,), budget="quick",
                                                            batch_size=8, samples=None), **kw}), source=source)


def test_ensemble_members_follow_the_preset_and_fold_to_one_gradient_on_an_ann():
    quick = BUDGETS["quick"]
    snn = composite_members("ensemble", "bptt", None, "quick", snn=True)
    assert [m.label for m in snn] == [*quick.members, "square"]
    assert all(m.whole_batch for m in snn[:-1]) and not snn[-1].whole_batch  # Square only on the survivors
    assert [(m.method, m.grad) for m in snn[:2]] == [("sa-pgd", "assg"), ("apgd-ce", "assg")]
    shape = next(m for m in composite_members("ensemble", "bptt", None, "standard", snn=True)
                 if m.label == "apgd-ce/bptt:pcw:0.5")
    assert (shape.method, shape.grad, shape.surrogate) == ("apgd-ce", "bptt", "pcw:0.5")
    ann = composite_members("ensemble", "bptt", None, "quick", snn=False)
    assert [(m.label, m.grad) for m in ann] == [("sa-pgd", "bptt"), ("apgd-ce", "bptt"), ("apgd-t", "bptt"),
                                                ("square", None)]


def test_ensemble_is_at_most_every_attack_it_contains_sample_by_sample():
    """Each gradient member run alone with its seed on the same batch gives exactly the examples
    it gives inside the ensemble, so it breaks nothing the ensemble leaves correct; a sample keeps
    the example of the first member that broke it. At eps 0.0005 on 24 samples the first member
    leaves some for the next, so a member that attacked only the survivors (other random starts)
    would differ."""
    eps = 0.0005
    model = tiny_model("snn")
    data = self_labelled(model, 24)
    config = AttackConfig(methods=("ensemble",), eps=(eps,), budget="quick", batch_size=24, samples=None)
    entry = run_attacks(model, data, config).entries[0]
    x, y = data.tensors
    attackers = Attackers(model, config, None, "cpu")
    (attack,) = plan_attacks(config, snn=True)
    budget = member_budget("ensemble", Budget.of(config), "quick")
    ensemble_correct = entry.pred == y
    gradient_members = [m for m in attack.members if m.whole_batch]
    assert len({b for b in entry.broken_by if b}) >= 2  # more than the first member broke samples
    for member in gradient_members:
        alone = craft(attackers.for_member(member), member.method, x, y, eps, budget,
                      batch_seed(config.seed, f"{attack.name}/{member.label}", eps, 0), n_classes=10)
        assert not (ensemble_correct & (predict(model, alone) != y)).any(), member.label
        mine = [i for i, b in enumerate(entry.broken_by) if b == member.label]
        assert torch.equal(entry.adv[mine], alone[mine]), member.label
    for i, by in enumerate(entry.broken_by):
        assert (by == "") == bool(ensemble_correct[i])


def test_ensemble_budget_is_stored_as_used():
    model = tiny_model("ann")
    store = run(model, self_labelled(model, 4))
    quick = BUDGETS["quick"]
    assert store.config["budgets"]["ensemble"] == {
        "budget": "quick", "iterations": quick.iterations, "target_classes": quick.target_classes,
        "queries": quick.queries, "members": [*quick.members, "square"], "restarts": 1}
    (record,) = store.config["attacks"]
    assert record["members"] == ["sa-pgd", "apgd-ce", "apgd-t", "square"]  # the ANN's: one exact gradient
    # in words for the tables: one description, no surrogate beside it
    assert (record["grad"], record["surrogate"]) == ("ensemble of 4 (quick), each member its own gradient", "-")
    # the store's gradient (the HTML page's "what was attacked") is not the run's unused --grad
    assert store.config["gradient"] == {"grad": "each ensemble member its own", "surrogate": "-"}
    pgd_too = run(model, self_labelled(model, 4), methods=("ensemble", "pgd"), steps=2)
    assert pgd_too.config["gradient"] == {"grad": "exact (ann)", "surrogate": "-"}  # PGD's, the run's --grad


def test_sapgd_runs_with_every_gradient_mode_and_stays_in_the_ball():
    model = tiny_model("snn")
    data = self_labelled(model, 4)
    for grad in ("bptt", "bptr", "rga", "hart", "pdsg", "assg"):
        store = run_attacks(model, data, AttackConfig(methods=("sa-pgd",), eps=(EPS,), iterations=3, grad=grad,
                                                      batch_size=4, samples=None))
        assert store.attack("sa-pgd").mode == grad
        assert float(store.entries[0].linf.max()) <= EPS + 1e-6


class Quantize(nn.Module):
    """Rounds every pixel to 4 levels: its gradient is zero almost everywhere, whatever rule the
    attacker uses behind it, while Square's queries cross the rounding steps."""

    def forward(self, x):
        return torch.round(x * 3) / 3


@pytest.mark.parametrize("methods, evidence", [(("sa-pgd", "apgd-ce", "square"), "square_vs_whitebox"),
                                               (("ensemble",), "ensemble_square")])
def test_a_model_built_to_mask_gradients_trips_the_verdict_under_the_strongest_modes(methods, evidence):
    model = tiny_model("snn", threshold=0.1)
    model.norm = nn.Sequential(Quantize(), model.norm)
    x, _ = inputs(16)
    data = TensorDataset(x, predict(model, x))
    store = run_attacks(model, data, AttackConfig(methods=methods, eps=(16 / 255,), grad="assg", iterations=10,
                                                  queries=300, budget="quick", batch_size=16, samples=None))
    verdict = masking_verdict(store_checks(store))
    assert verdict.passed is False and evidence in verdict.message


def test_cli_runs_the_ensemble_and_refuses_bad_mode_settings(runner, tmp_path):
    model = make_checkpoint(tmp_path / "snn.pt", "snn")
    code, out = cli(runner, "attack", "--model", model, "--method", "ensemble", "--budget", "quick", "--samples", "4",
                    "--batch-size", "4", "--out", tmp_path / "attacks")
    assert code == 0, out
    assert "ensemble" in out and "quick" in out
    ann = make_checkpoint(tmp_path / "ann.pt", "ann")
    for args, needle in ((("--model", ann, "--grad", "rga"), "gradient mode rga is a rule for spiking neurons"),
                         (("--model", model, "--hart-gamma", "0"), "--hart-gamma must be a finite number in (0, 100]"),
                         (("--model", model, "--budget", "huge"), "unknown --budget 'huge'"),
                         (("--model", model, "--grad", "pdsg", "--attack-surrogate", "atan"), "pdsg uses its own rule")):
        code, out = cli(runner, "attack", *args, "--samples", "4", "--out", tmp_path / "bad")
        assert_one_line_error(code, out, "error:", needle)
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").glob("*.h5"))


def test_the_same_command_at_the_same_thread_count_gives_the_same_robust_accuracy(runner, tmp_path):
    """Train, then attack with the strongest mode, twice from scratch (one thread, as every test):
    the same weights and the same examples. (Another thread count sums convolutions in another
    order and ends training with other weights: provenance records the threads.)"""
    import torch as t

    from suite.checkpoint import load_checkpoint
    from suite.results.attacks import read_store
    from tests.support.helpers import FAST

    stores = []
    for k in ("a", "b"):
        code, out = cli(runner, "train", *FAST, "--epochs", "1", "--out", tmp_path / k, "--name", "m")
        assert code == 0, out
        code, out = cli(runner, "attack", "--model", tmp_path / k / "m.pt", "--method", "sa-pgd", "--grad", "assg",
                        "--iterations", "5", "--samples", "16", "--batch-size", "16", "--out", tmp_path / k,
                        "--name", "s")
        assert code == 0, out
        stores.append(read_store(tmp_path / k / "s.h5"))
    a, b = (load_checkpoint(tmp_path / k / "m.pt") for k in ("a", "b"))
    assert all(t.equal(a.state["model"][n], b.state["model"][n]) for n in a.state["model"])
    assert a.provenance["threads"] == b.provenance["threads"] == t.get_num_threads()
    assert t.equal(stores[0].entries[0].adv, stores[1].entries[0].adv)
    assert stores[0].entries[0].robust_acc == stores[1].entries[0].robust_acc


# ----------------------------------------------------------------------------- composites, scripted
# How a composite runs its members, with scripted members: inputs are [B, 2] with column 0 what
# the judge reads (class 1 where it is >= 0.5) and column 1 the sample's id; member k "breaks" the
# ids it is told to by setting column 0 to 1 + k/10, so a kept example names its member. Every
# expected value is read off the script, not computed by the code under test.

class Judge(nn.Module):
    def forward(self, x):
        return torch.stack([0.5 - x[:, 0], x[:, 0] - 0.5], dim=1)


class Script:
    """Attackers with scripted members: `breaks[label]` the ids member `label` breaks."""

    def __init__(self, members, breaks):
        self.judge, self.breaks, self.seen = Judge(), breaks, {}
        self.tag = {m.label: 1 + (k + 1) / 10 for k, m in enumerate(members)}

    def for_member(self, member):
        return member.label

    def craft(self, label, method, x, y, eps, budget, seed, n_classes):
        ids = x[:, 1].long().tolist()
        self.seen[label] = ids
        out = x.clone()
        for row, i in enumerate(ids):
            if i in self.breaks.get(label, ()):
                out[row, 0] = self.tag[label]
        return out


def run_script(monkeypatch, members, breaks, eps=0.1):
    """Five samples, all of class 0; sample 1 is labelled 1, so its clean input is already wrong."""
    script = Script(members, breaks)
    monkeypatch.setattr(composite, "craft", script.craft)
    x = torch.stack([torch.zeros(5), torch.arange(5.0)], dim=1).double()
    y = torch.tensor([0, 1, 0, 0, 0])
    adv, broken_by = craft_composite(script, tuple(members), x, y, eps, Budget(1, 0.1, True, 1, 1),
                                     lambda m: 0, 2)
    return script, x, adv, broken_by


def test_each_member_attacks_only_what_the_earlier_ones_left_correct(monkeypatch):
    members = [Member("a", "apgd-ce", "bptt"), Member("b", "apgd-t", "bptt"), Member("c", "square")]
    script, x, adv, broken_by = run_script(monkeypatch, members, {"a": {2}, "b": {2, 3}, "c": {4}})
    assert script.seen == {"a": [0, 2, 3, 4], "b": [0, 3, 4], "c": [0, 4]}
    assert broken_by == ["", "clean", "a", "b", "c"]
    assert adv[:, 0].tolist() == [0.0, 0.0, 1.1, 1.2, 1.3]  # each sample keeps its breaker's example
    assert torch.equal(adv[:, 1], x[:, 1])


def test_whole_batch_members_see_every_sample_and_the_first_breaker_keeps_its_example(monkeypatch):
    members = [Member("a", "sa-pgd", "assg", whole_batch=True), Member("b", "apgd-ce", "hart", whole_batch=True),
               Member("c", "square")]
    script, _, adv, broken_by = run_script(monkeypatch, members, {"a": {2}, "b": {1, 2, 3}, "c": {0, 4}})
    assert script.seen == {"a": [0, 1, 2, 3, 4], "b": [0, 1, 2, 3, 4], "c": [0, 4]}
    assert broken_by == ["c", "clean", "a", "b", "c"]  # b's break of sample 2 came second, of 1 after "clean"
    assert adv[:, 0].tolist() == [1.3, 0.0, 1.1, 1.2, 1.3]


def test_no_member_runs_at_eps_0_and_members_stop_when_nothing_is_left(monkeypatch):
    members = [Member("a", "apgd-ce", "bptt"), Member("b", "square")]
    script, x, adv, broken_by = run_script(monkeypatch, members, {"a": {0, 2, 3, 4}}, eps=0.0)
    assert script.seen == {} and torch.equal(adv, x) and broken_by == ["", "clean", "", "", ""]
    script, _, _, broken_by = run_script(monkeypatch, members, {"a": {0, 2, 3, 4}}, eps=1.0)
    assert script.seen == {"a": [0, 2, 3, 4]} and broken_by == ["a", "clean", "a", "a", "a"]


def test_autoattack_members_carry_the_runs_gradient_and_square_none():
    members = composite_members("autoattack", "rga", None, "quick", snn=True)
    assert [(m.label, m.grad, m.surrogate, m.whole_batch) for m in members] == [
        ("apgd-ce", "rga", None, False), ("apgd-t", "rga", None, False), ("fab-t", "rga", None, False),
        ("square", None, None, False)]
    assert [m.method for m in members] == list(AUTOATTACK)
    shaped = composite_members("autoattack", "bptt", "pcw:0.5", "quick", snn=True)
    assert [m.surrogate for m in shaped] == ["pcw:0.5", "pcw:0.5", "pcw:0.5", None]


def test_an_anns_ensemble_runs_each_method_once_on_the_whole_batch():
    members = composite_members("ensemble", "bptt", None, "standard", snn=False)
    assert [(m.label, m.grad, m.surrogate, m.whole_batch) for m in members] == [
        ("sa-pgd", "bptt", None, True), ("apgd-ce", "bptt", None, True), ("apgd-t", "bptt", None, True),
        ("square", None, None, False)]


class _NotDifferentiated(AssertionError):
    pass


def _refuse_backward(module, grad_input, grad_output):
    raise _NotDifferentiated("the target was differentiated")


@pytest.mark.parametrize("target_kind, source_kind", [("snn", "ann"), ("ann", "snn")])
def test_a_transfer_ensemble_crafts_every_member_on_the_source(target_kind, source_kind):
    """Under --grad transfer each method of the preset runs once, crafted on the source: the
    target's backward never runs (a hook on it raises), and the store says so. An SNN source
    is differentiated by bptt (the preset's modes would differentiate the target)."""
    target, source = tiny_model(target_kind), tiny_model(source_kind, seed=1)
    target.register_full_backward_hook(_refuse_backward)
    data = self_labelled(target, 8)
    store = run(target, data, source, grad="transfer", iterations=3, queries=20)
    (record,) = store.config["attacks"]
    assert record["members"] == ["sa-pgd", "apgd-ce", "apgd-t", "square"]
    how = "exact" if source_kind == "ann" else "bptt"
    assert record["grad"] == f"ensemble of 4 (quick), transfer from {source_kind} ({how})"
    assert [(m.label, m.grad) for m in composite_members("ensemble", "transfer", None, "quick", snn=True)] == [
        ("sa-pgd", "transfer"), ("apgd-ce", "transfer"), ("apgd-t", "transfer"), ("square", None)]
    with pytest.raises(_NotDifferentiated):  # the hook does fire when the target is attacked itself
        run(target, data, iterations=3, queries=20)


def test_attacker_surrogates_multiply_the_gradient_methods_but_not_the_ensemble():
    """Two --attack-surrogate shapes: PGD and AutoAttack run once per shape (AutoAttack's members
    carry it), the ensemble once, with its preset's own members, Square once."""
    config = AttackConfig(methods=("pgd", "ensemble", "autoattack", "square"), attack_surrogates=("pcw:0.5", "exp:1"))
    attacks = plan_attacks(config, snn=True)
    assert [(a.name, a.surrogate) for a in attacks] == [
        ("pgd@pcw:0.5", "pcw:0.5"), ("pgd@exp:1", "exp:1"), ("ensemble", None),
        ("autoattack@pcw:0.5", "pcw:0.5"), ("autoattack@exp:1", "exp:1"), ("square", None)]
    assert [m.label for m in attacks[2].members] == [*BUDGETS["standard"].members, "square"]
    assert {m.surrogate for m in attacks[3].members} == {"pcw:0.5", None}


def test_ensemble_members_spend_the_presets_budget_and_autoattack_the_runs():
    run_budget = Budget(steps=7, alpha=0.01, random_start=False, iterations=11, queries=13, target_classes=5)
    for name, preset in BUDGETS.items():
        assert member_budget("ensemble", run_budget, name) == Budget(
            steps=7, alpha=0.01, random_start=False, iterations=preset.iterations, queries=preset.queries,
            target_classes=preset.target_classes)
    assert member_budget("autoattack", run_budget, "quick") == run_budget


def test_an_attack_leaves_the_attackers_model_in_eval_mode_for_the_next():
    """torchattacks calls train() after an attack on a model it found in training mode; the
    attack models are in eval mode (wrapper included), so SA-PGD after APGD-T on the same model
    gives exactly what it gives alone, and no BatchNorm statistic moves. (Before: the wrapper was
    in training mode, APGD-T left the whole copy training, and SA-PGD then ran BatchNorm on batch
    statistics and updated them.)"""
    model = tiny_model("snn")
    x, y = inputs(8)
    config = AttackConfig(methods=("ensemble",), eps=(EPS,))
    budget = Budget(steps=2, alpha=2 / 255, random_start=True, iterations=3, queries=5, target_classes=2)
    alone = craft(Attackers(model, config, None, "cpu").get("sa-pgd", "assg", None), "sa-pgd", x, y, EPS, budget, 1)
    attacker = Attackers(model, config, None, "cpu").get("sa-pgd", "assg", None)
    assert not any(m.training for m in attacker.modules())
    stats = {k: v.clone() for k, v in attacker.state_dict().items()}
    craft(attacker, "apgd-t", x, y, EPS, budget, 2)
    assert not any(m.training for m in attacker.modules())
    assert torch.equal(craft(attacker, "sa-pgd", x, y, EPS, budget, 1), alone)
    assert all(torch.equal(v, attacker.state_dict()[k]) for k, v in stats.items())


@pytest.mark.slow
def test_the_demo_snn_attacked_with_the_strongest_mode_does_not_trip_the_verdict(tmp_path):
    """The demo's SNN (its real training settings, one thread) at eps 8/255: SA-PGD through ASSG
    leaves no more samples correct than Square at its full 5000 queries, so the verdict finds no
    masking (benchmarks/README.md: 30.9% against 38.7% on 256 samples). Fails when the strongest
    mode's gradient is broken (Square then wins) or the verdict compares with the wrong attack."""
    from suite.checkpoint import load_model
    from suite.data import load_dataset
    from suite.demo import DEMO
    from suite.train import train_one
    from suite.where import Where

    where = Where(tmp_path, device="cpu", data_root=tmp_path, show_progress=False)
    result = train_one(DEMO.train.variant(kind="snn"), where)
    model, ckpt = load_model(result.checkpoint)
    data = load_dataset(ckpt.data_spec, tmp_path, "test")
    store = run_attacks(model, data, AttackConfig(methods=("sa-pgd", "square"), eps=(EPS,), grad="assg",
                                                  samples=128, batch_size=128, queries=5000))
    acc = {e.method: e.robust_acc for e in store.entries}
    assert acc["sa-pgd"] <= acc["square"], acc
    verdict = masking_verdict(store_checks(store))
    assert verdict.passed is True and "square_vs_whitebox" in verdict.message, verdict.message
