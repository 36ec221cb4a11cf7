"""Attacks (suite.attacks): option checks, perturbation bounds, gradient modes, determinism, sanity checks.

Models are tiny ResNet-20 twins on random 8x8 images (width 0.25, T=2, threshold 0.25 so that the
untrained SNN spikes in every layer). "Self-labelled" data uses the model's own clean
predictions as labels: clean accuracy is 100%, so attacks have something to break.
"""

import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from suite.attacks import (AttackConfig, Budget, attack_model, craft, input_gradient, large_eps_check, predict, run_attacks,
                           store_checks)
from suite.errors import SuiteError
from suite.models import LIF, MeanLogits, ModelConfig, build_model
from suite.results.attacks import AttackEntry, AttackStore
from suite.values import parse_fraction, parse_fractions, parse_list


def tiny_model(kind: str = "snn", seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    cfg = ModelConfig.from_dict({**dict(arch="resnet20", kind=kind, in_channels=1, input_size=8, width=0.25,
                                        timesteps=2, threshold=0.25), **kw})
    return build_model(cfg).eval()


def inputs(n: int = 4):
    """n random 8x8 one-channel images in [0, 1] (x [n, 1, 8, 8]) and labels 0, 1, 2, ... (y [n])."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=gen), torch.arange(n) % 10


def self_labelled(model: nn.Module, n: int = 4) -> TensorDataset:
    x, _ = inputs(n)
    return TensorDataset(x, predict(model, x))


def config(**kw) -> AttackConfig:
    """A small PGD run over every sample of the dataset given (samples=None: the library's
    default is the CLI's first 256)."""
    return AttackConfig(**{**dict(methods=("pgd",), eps=(8 / 255,), alpha=2 / 255, steps=2, batch_size=4,
                                  samples=None), **kw})


# ------------------------------------------------------------------ options

def eps_option(text: str) -> tuple[float, ...]:
    """--eps text as the CLI takes it: parsed (suite.values), then checked and ordered by AttackConfig."""
    return AttackConfig(eps=parse_fractions(text, "--eps")).eps


@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), ("0.03", 0.03), ("0", 0.0)])
def test_eps_accepts_fractions_decimals_and_zero(text, value):
    assert eps_option(text) == (pytest.approx(value),)


@pytest.mark.parametrize("text, words", [
    ("8/0", "--eps '8/0' divides by zero"), ("abc", "--eps 'abc' is not a number or a fraction like 8/255"),
    ("-0.1", "--eps must be a finite number in [0, 1], got -0.1"),
    ("1.5", "--eps must be a finite number in [0, 1], got 1.5")])
def test_bad_eps_is_one_clear_error(text, words):
    """Syntax errors come from the parser, range errors from AttackConfig: each names --eps and why."""
    with pytest.raises(SuiteError, match=re.escape(words)):
        eps_option(text)


def test_eps_list_is_sorted_and_unique():
    assert eps_option("8/255, 2/255,0,8/255") == (0.0, 2 / 255, 8 / 255)


def test_cli_text_is_parsed_before_the_config():
    cfg = AttackConfig(methods=parse_list("fgsm, PGD,fgsm", "--method"), eps=parse_fractions("8/255,0", "--eps"),
                       alpha=parse_fraction("1/255", "--alpha"))
    assert cfg.methods == ("fgsm", "pgd") and cfg.eps == (0.0, 8 / 255) and cfg.alpha == 1 / 255


@pytest.mark.parametrize("field, error, words", [
    ("methods", TypeError, "AttackConfig.methods takes a sequence of values, not text; split it first"),
    ("eps", TypeError, "AttackConfig.eps takes a sequence of values, not text; split it first"),
    ("alpha", SuiteError, "--alpha must be a number, got '2/255'"),
    ("attack_surrogates", TypeError, "AttackConfig.attack_surrogates takes a sequence of values, not text"),
])
def test_config_refuses_text(field, error, words):
    """Text is parsed before the config (suite.values): a config given text says so, not
    iterating "pgd" letter by letter or comparing "2/255" with numbers."""
    text = {"methods": "pgd", "eps": "8/255", "alpha": "2/255", "attack_surrogates": "atan"}[field]
    with pytest.raises(error, match=re.escape(words)):
        AttackConfig(**{field: text})


def test_config_lists_become_sorted_tuples():
    assert AttackConfig(methods=["pgd", "fgsm", "pgd"], eps=[8 / 255, 0.0]) == \
        AttackConfig(methods=("pgd", "fgsm"), eps=(0.0, 8 / 255))


def test_alpha_must_be_positive():
    assert AttackConfig(alpha=parse_fraction("2/255", "--alpha")).alpha == pytest.approx(2 / 255)
    with pytest.raises(SuiteError, match=re.escape("--alpha must be a finite number in (0, 1], got 0")):
        AttackConfig(alpha=parse_fraction("0", "--alpha"))


def test_alpha_above_eps_with_one_step_is_an_error():
    with pytest.raises(SuiteError, match="1 step and alpha 4/255 > eps 2/255"):
        config(eps=(0.0, 2 / 255), alpha=4 / 255, steps=1)
    config(eps=(2 / 255,), alpha=4 / 255, steps=2)  # more steps: fine
    config(methods=("fgsm",), eps=(2 / 255,), alpha=4 / 255, steps=1)  # alpha is PGD's only


@pytest.mark.parametrize("kw, words", [
    (dict(steps=0), "--steps must be a whole number from 1 to 100000, got 0"),
    (dict(methods=("cw",)), "unknown attack method 'cw'"),
    (dict(grad="bptx"), "unknown gradient mode 'bptx'"), (dict(grad="bptr", attack_surrogates=("atan",)), "bptr uses"),
    (dict(attack_surrogates=("atan", "nope")), "unknown surrogate 'nope'"),
    (dict(eps=(1.5,)), "--eps must be a finite number in [0, 1], got 1.5"),
])
def test_bad_config_is_one_clear_error(kw, words):
    with pytest.raises(SuiteError, match=re.escape(words)):
        config(**kw)


def test_transfer_needs_a_source_and_only_transfer_takes_one():
    """The rule is checked where the models meet the config (run_attacks, by check_source),
    before any sample is attacked."""
    snn, ann = tiny_model("snn"), tiny_model("ann")
    data = self_labelled(snn)
    with pytest.raises(SuiteError, match="needs a source"):
        run_attacks(snn, data, config(grad="transfer"))
    with pytest.raises(SuiteError, match="only applies to gradient mode transfer"):
        run_attacks(snn, data, config(grad="bptt"), source=ann)


# ------------------------------------------------------------------ bounds

@pytest.mark.parametrize("kind", ["snn", "ann"])
@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_perturbation_within_eps_and_inputs_in_range(kind, method):
    model = tiny_model(kind)
    store = run_attacks(model, self_labelled(model), config(methods=(method,), eps=(0.0, 4 / 255, 16 / 255)))
    for e in store.entries:
        delta = (e.adv - store.clean).abs().flatten(1).amax(1)
        assert float(delta.max()) <= e.eps + 1e-6
        assert torch.allclose(delta, e.linf)
        assert 0.0 <= float(e.adv.min()) and float(e.adv.max()) <= 1.0
    clean = store.entry(method, 0.0)
    assert torch.equal(clean.adv, store.clean) and torch.equal(clean.pred, store.clean_pred)
    assert store.clean_acc == 1.0  # self-labelled
    assert float(store.entry(method, 16 / 255).linf.max()) > 8 / 255  # the budget is used


# ------------------------------------------------------------------ gradients

def test_fgsm_on_ann_equals_hand_computed_sign_step():
    model = tiny_model("ann")
    x, y = inputs(4)
    xg = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)[0]
    expected = (x + 8 / 255 * grad.sign()).clamp(0, 1)
    adv = craft(attack_model(model), "fgsm", x, y, 8 / 255, Budget.of(config()), seed=0)
    assert torch.allclose(adv, expected, atol=1e-6)


def test_bptt_gradient_equals_autograd_through_the_unrolled_snn():
    model = tiny_model("snn")
    x, y = inputs(4)
    xg = x.clone().requires_grad_(True)
    out = model(xg)  # [T, B, classes]: the unrolled forward
    reference = torch.autograd.grad(F.cross_entropy(out.mean(0), y), xg)[0]
    got = input_gradient(attack_model(model, "bptt"), x, y)
    assert reference.abs().sum() > 0
    assert torch.allclose(got, reference, rtol=1e-5, atol=1e-8)
    adv = craft(attack_model(model, "bptt"), "fgsm", x, y, 8 / 255, Budget.of(config()), seed=0)
    assert torch.allclose(adv, (x + 8 / 255 * reference.sign()).clamp(0, 1), atol=1e-6)


def test_bptr_keeps_the_forward_and_changes_the_gradient():
    model = tiny_model("snn")
    x, y = inputs(4)
    bptr, bptt = attack_model(model, "bptr"), attack_model(model, "bptt")
    assert torch.equal(bptr(x), MeanLogits(model)(x))  # forward exactly the SNN's
    g_bptr, g_bptt = input_gradient(bptr, x, y), input_gradient(bptt, x, y)
    assert torch.isfinite(g_bptr).all() and torch.isfinite(g_bptt).all()
    assert g_bptr.abs().sum() > 0
    assert not torch.allclose(g_bptr.sign(), g_bptt.sign())


def test_bptr_gradient_is_the_if_rate_derivative():
    """One LIF layer, T=2, B=1: dL/dx_t = 1[rate > 0] / (threshold * T) * sum_t' dL/ds_t', with
    threshold * T = 0.8 (not 1, where dividing and multiplying by it would agree)."""
    from suite.attacks.gradients import RateLIF
    lif = LIF(timesteps=2, tau=2.0, threshold=0.4)  # leak 0.5
    # neuron 0 fires at t1 (0.1 + 0.9), neuron 1 at t0 (0.7), neuron 2 never (-1.0, -0.2),
    # neuron 3 never: its v is exactly 0 at t0 (0.4 - 0.4, no spike: s = 1[v > 0]), then -0.8
    x = torch.tensor([[0.2, 0.7, -1.0, 0.4], [0.9, 0.1, 0.3, -1.0]], requires_grad=True)  # [T*B, 4]
    out = RateLIF(lif)(x)
    assert torch.equal(out, torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 5.0, 6.0, 7.0]])
    (out * w).sum().backward()  # dL/ds = w; sum over t: [5, 7, 9, 11]; / 0.8 where it fires
    assert torch.allclose(x.grad, torch.tensor([[6.25, 8.75, 0.0, 0.0], [6.25, 8.75, 0.0, 0.0]]),
                          rtol=0, atol=1e-6)


def test_transfer_never_backpropagates_the_target():
    target, source = tiny_model("snn"), tiny_model("ann", seed=1)
    grads_needed = []
    target.register_forward_hook(lambda m, i, out: grads_needed.append(out.requires_grad))
    data = self_labelled(target)
    store = run_attacks(target, data, config(methods=("fgsm",), grad="transfer"), source=source)
    assert grads_needed and not any(grads_needed)  # every target forward ran without a graph
    x, y = data.tensors
    on_source = craft(attack_model(source), "fgsm", x, y, 8 / 255, Budget.of(config()), seed=0)
    assert torch.equal(store.entries[0].adv, on_source)
    assert store.config["gradient"]["grad"] == "transfer from ann (exact)"


def test_attack_surrogate_does_not_touch_the_target():
    model = tiny_model("snn", surrogate="atan")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    store = run_attacks(model, self_labelled(model), config(attack_surrogates=("fast_sigmoid",)))
    assert {m.surrogate for m in model.modules() if isinstance(m, LIF)} == {"atan"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters()) and not model.training
    assert store.config["gradient"]["surrogate"] == "fast_sigmoid"


def test_attack_surrogate_changes_the_gradient():
    model = tiny_model("snn")
    x, y = inputs(4)
    a = input_gradient(attack_model(model, "bptt"), x, y)
    b = input_gradient(attack_model(model, "bptt", attack_surrogate="fast_sigmoid"), x, y)
    assert not torch.allclose(a, b)


def test_ann_target_ignores_the_snn_gradient_modes():
    model = tiny_model("ann")
    x, y = inputs(4)
    assert torch.equal(input_gradient(attack_model(model, "bptt"), x, y),
                       input_gradient(attack_model(model, "bptr"), x, y))


# ------------------------------------------------------------------ determinism

def test_same_seed_gives_same_examples_and_leaves_rng_alone():
    model = tiny_model("snn")
    data = self_labelled(model)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = run_attacks(model, data, config(seed=7)).entries[0].adv
    assert torch.equal(torch.get_rng_state(), state)
    torch.rand(5)  # whatever ran in between
    b = run_attacks(model, data, config(seed=7)).entries[0].adv
    c = run_attacks(model, data, config(seed=8)).entries[0].adv
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # the random start differs


# ------------------------------------------------------------------ sanity checks

def synthetic_store(accs: dict[tuple[str, float], float], n: int = 10, steps: int = 10) -> AttackStore:
    labels = torch.zeros(n, dtype=torch.int64)
    clean = torch.full((n, 1, 2, 2), 0.5)

    def entry(method, eps, acc):
        pred = (torch.arange(n) >= round(acc * n)).long()  # first acc*n correct
        adv = clean + eps
        return AttackEntry(method, eps, adv, pred, torch.full((n,), float(eps)), acc)

    return AttackStore(indices=torch.arange(n), labels=labels, clean_pred=labels.clone(),
                       entries=[entry(m, e, a) for (m, e), a in accs.items()], clean=clean,
                       config={"attack": {"steps": steps}, "gradient": {"grad": "bptt"}})


def test_checks_pass_on_a_falling_curve():
    store = synthetic_store({("fgsm", 0.0): 1.0, ("fgsm", 0.1): 0.5, ("pgd", 0.0): 1.0, ("pgd", 0.1): 0.3})
    checks = store_checks(store)
    assert [c.name for c in checks] == ["bounds", "monotone[fgsm]", "monotone[pgd]", "pgd_vs_fgsm"]
    assert all(c.passed for c in checks)


def test_checks_catch_rising_accuracy_and_weak_pgd():
    store = synthetic_store({("fgsm", 0.0): 1.0, ("fgsm", 0.1): 0.2, ("pgd", 0.0): 1.0,
                             ("pgd", 0.05): 0.3, ("pgd", 0.1): 0.4})
    checks = {c.name: c for c in store_checks(store)}
    assert not checks["monotone[pgd]"].passed
    assert "+1 of 10 samples" in checks["monotone[pgd]"].message
    assert not checks["pgd_vs_fgsm"].passed and "0.1" in checks["pgd_vs_fgsm"].message
    assert checks["monotone[fgsm]"].passed


def test_stored_large_eps_run_is_checked():
    store = synthetic_store({("pgd", 0.0): 1.0, ("pgd", 64 / 255): 0.5}, steps=20)
    check = {c.name: c for c in store_checks(store)}["large_eps"]
    assert not check.passed and "gradient masking suspected" in check.message


class LinearANN(nn.Module):
    """A linear classifier on 8x8 inputs; `rounded` rounds the input first, which masks every
    input gradient (d round / dx = 0): the textbook gradient-masking defence."""

    kind = "ann"

    def __init__(self, rounded: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.rounded = rounded
        self.fc = nn.Linear(64, 10)
        nn.init.normal_(self.fc.weight)

    def forward(self, x):
        return self.fc((torch.round(x) if self.rounded else x).flatten(1))


def test_large_eps_check_flags_masked_gradients():
    masked = LinearANN(rounded=True).eval()
    x = (inputs(8)[0] > 0.5).float()  # binary inputs: a 64/255 random start never crosses 0.5
    data = TensorDataset(x, predict(masked, x))
    store = run_attacks(masked, data, config(eps=(0.0,), batch_size=8))
    check = large_eps_check(masked, store)
    assert not check.passed and "gradient masking suspected" in check.message


def test_large_eps_check_passes_with_true_gradients():
    model = LinearANN().eval()
    x = (inputs(8)[0] > 0.5).float()
    store = run_attacks(model, TensorDataset(x, predict(model, x)), config(eps=(0.0,), batch_size=8))
    check = large_eps_check(model, store)
    assert check.passed, check.message


def test_bptr_gradient_with_two_samples_averages_over_time_only():
    """T=2, B=2: the rate (and the sum of dL/ds) is per sample and neuron, over t alone."""
    from suite.attacks.gradients import RateLIF
    lif = LIF(timesteps=2, tau=2.0, threshold=0.4)  # leak 0.5; threshold * T = 0.8
    # rows t0b0, t0b1, t1b0, t1b1. b0: neuron 0 fires at t0 (0.7), neuron 1 never (0.1, 0.15);
    # b1: neuron 0 never (-1.0, -0.7), neuron 1 at t1 (0.3, then 0.15 + 0.4 = 0.55)
    x = torch.tensor([[0.7, 0.1], [-1.0, 0.3], [-0.2, 0.1], [-0.2, 0.4]], requires_grad=True)
    out = RateLIF(lif)(x)
    assert torch.equal(out, torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    (out * w).sum().backward()  # sums over t of dL/ds: b0 [6, 8], b1 [10, 12]; / 0.8 where it fires
    assert torch.allclose(x.grad, torch.tensor([[7.5, 0.0], [0.0, 15.0], [7.5, 0.0], [0.0, 15.0]]),
                          rtol=0, atol=1e-6)


def test_input_gradient_of_a_bare_snn_uses_its_time_averaged_logits():
    model = tiny_model("snn")
    x, y = inputs(4)
    assert torch.equal(input_gradient(model, x, y), input_gradient(MeanLogits(model), x, y))


def test_transfer_source_must_fit_the_target():
    target = tiny_model("snn")
    with pytest.raises(SuiteError, match=r"does not fit the target: in_channels 2 vs 1, num_classes 5 vs 10 \(source vs target\)"):
        attack_model(target, "transfer", source=tiny_model("ann", in_channels=2, num_classes=5))
    bare = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # no cfg: nothing to compare, accepted
    attack_model(target, "transfer", source=bare)
    attack_model(bare, "transfer", source=tiny_model("ann"))


# ------------------------------------------------------------------ what the attacker differentiated

class _BareSNN(nn.Module):
    """An SNN without a suite config: the summary cannot name its surrogate."""
    kind = "snn"


@pytest.mark.parametrize("case, grad, attack_surrogate, expected", [
    ("ann", "bptt", None, {"grad": "exact (ann)", "surrogate": "-"}),
    ("snn", "bptt", None, {"grad": "bptt", "surrogate": "fast_sigmoid"}),  # the model's own
    ("snn", "bptt", "sigmoid", {"grad": "bptt", "surrogate": "sigmoid"}),  # the attack's choice
    ("snn", "bptr", None, {"grad": "bptr", "surrogate": "rate (IF)"}),
    ("snn", "rga", None, {"grad": "rga", "surrogate": "-"}),  # the mode's own rule, no named surrogate
    ("snn", "assg", None, {"grad": "assg", "surrogate": "-"}),
    ("snn", "bptt", "pcw:0.5", {"grad": "bptt", "surrogate": "pcw:0.5"}),
    ("bare", "bptt", None, {"grad": "bptt", "surrogate": "?"}),
    ("from-ann", "transfer", None, {"grad": "transfer from ann (exact)", "surrogate": "-"}),
    ("from-snn", "transfer", None, {"grad": "transfer from snn (bptt)", "surrogate": "fast_sigmoid"}),
    ("from-bare", "transfer", None, {"grad": "transfer from ? (exact)", "surrogate": "-"}),
])
def test_describe_gradient_names_what_the_attacker_differentiated(case, grad, attack_surrogate, expected):
    """The words stored with every attack and printed in its summary, written out here: a
    transfer attack is described by its source model, an SNN's BPTT by the surrogate used
    (the attack's, else the model's own: here fast_sigmoid, not the default atan)."""
    from suite.attacks import describe_gradient
    snn, ann = tiny_model("snn", surrogate="fast_sigmoid"), tiny_model("ann")
    target, source = {"ann": (ann, None), "snn": (snn, None), "bare": (_BareSNN(), None),
                      "from-ann": (snn, ann), "from-snn": (ann, snn), "from-bare": (snn, nn.Linear(64, 10))}[case]
    assert describe_gradient(target, grad, attack_surrogate, source) == expected


@pytest.mark.parametrize("grad, surrogate, has_source, message", [
    ("bptx", None, None, "unknown gradient mode 'bptx'; choose one of: bptt, bptr, rga, hart, pdsg, assg, transfer"),
    ("bptr", "atan", None, "--attack-surrogate applies to bptt (and transfer from an SNN); bptr uses the rate "
                           "gradient, not a surrogate"),
    ("transfer", None, False, "gradient mode transfer needs a source model (--source) to craft the examples on"),
    ("bptt", None, True, "a source model (--source) only applies to gradient mode transfer, not bptt"),
])
def test_gradient_mode_rules_say_what_is_wrong(grad, surrogate, has_source, message):
    """The mode and the attacker's surrogates are checked by AttackConfig (no models needed:
    `has_source` None), the source's presence by check_source once the models are known."""
    from suite.attacks.gradients import check_source
    with pytest.raises(SuiteError) as caught:
        if has_source is None:
            AttackConfig(grad=grad, attack_surrogates=(surrogate,) if surrogate else ())
        else:
            check_source(grad, has_source)
    assert str(caught.value) == message


def test_bptr_refuses_a_surrogate_and_an_snn_without_lifs_and_attack_model_freezes_its_copy():
    """A surrogate with bptr is refused by the config (attack_model trusts a checked config);
    attack_model itself refuses bptr on an SNN without LIF layers, and differentiates a frozen
    copy, never the model."""
    snn = tiny_model("snn")
    with pytest.raises(SuiteError, match="^--attack-surrogate applies to bptt"):
        AttackConfig(grad="bptr", attack_surrogates=("atan",))
    with pytest.raises(SuiteError, match="^bptr needs spiking neurons, and this SNN has none the suite recognises$"):
        attack_model(_BareSNN(), "bptr")
    for grad in ("bptt", "bptr"):
        attacker = attack_model(snn, grad)
        assert all(not p.requires_grad for p in attacker.parameters())  # input gradients only
    assert all(p.requires_grad for p in snn.parameters())  # the model itself is untouched
