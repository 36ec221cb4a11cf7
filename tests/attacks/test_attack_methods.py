"""APGD, FAB-T, Square and AutoAttack (suite.attacks.methods), the worst case over attacks and
surrogates (suite.attacks.worst), the masking verdict (suite.attacks.checks) and resumable runs
(suite.attacks.resume).

References are torchattacks itself, called directly with the seed the suite gives the call, and
AutoAttack's published standard budgets (github.com/fra31/auto-attack, set_version('standard')).
Budgets here are small and passed explicitly (iterations 4-10, queries 50-200) to stay fast.
"""

import json

import pytest
import torch
import torchattacks
from torch import nn
from torch.utils.data import TensorDataset

import suite.attacks.run as run_module
from suite.attacks import AttackConfig, predict, run_attacks, store_checks
from suite.attacks.checks import Check, masking_verdict
from suite.attacks.methods import METHODS, Budget, batch_seed
from suite.attacks.resume import Partial
from suite.attacks.worst import worst_case
from suite.errors import SuiteError
from suite.models import neurons
from suite.results.attacks import AttackEntry, read_store, write_store
from tests.attacks.test_attacks import self_labelled, tiny_model
from tests.support.helpers import RecordedBar

EPS = 8 / 255


def small(**kw) -> AttackConfig:
    """Small budgets over every sample of the dataset given (samples=None: the library's default
    is the CLI's first 256)."""
    return AttackConfig(**{**dict(methods=("apgd-ce",), eps=(EPS,), iterations=5, queries=50, steps=2,
                                  batch_size=4, samples=None), **kw})


# ------------------------------------------------------------------ the same examples as torchattacks

def test_apgd_ce_on_ann_equals_torchattacks_with_the_same_seed():
    model = tiny_model("ann")
    data = self_labelled(model, 8)
    store = run_attacks(model, data, small(methods=("apgd-ce",)))
    x, y = data.tensors
    expected = []
    for start in (0, 4):
        attack = torchattacks.APGD(model, norm="Linf", eps=EPS, steps=5, n_restarts=1, loss="ce", eot_iter=1,
                                   rho=0.75, seed=batch_seed(0, "apgd-ce", EPS, start))
        expected.append(attack(x[start:start + 4], y[start:start + 4]))
    assert torch.equal(store.entry("apgd-ce", EPS).adv, torch.cat(expected))
    assert store.entry("apgd-ce", EPS).robust_acc < 1.0  # the attack did something


def test_square_on_ann_equals_torchattacks_with_the_same_seed():
    model = tiny_model("ann")
    data = self_labelled(model, 8)
    store = run_attacks(model, data, small(methods=("square",), batch_size=8, queries=60))
    x, y = data.tensors
    attack = torchattacks.Square(model, norm="Linf", eps=EPS, n_queries=60, n_restarts=1, p_init=0.8,
                                 loss="margin", resc_schedule=False, seed=batch_seed(0, "square", EPS, 0))
    assert torch.equal(store.entry("square", EPS).adv, attack(x, y))


@pytest.mark.parametrize("classes, eps", [(10, EPS), (5, 4 / 255)])
def test_autoattack_equals_torchattacks_multiattack_of_its_four_attacks(classes, eps):
    """AutoAttack's rule (each attack on what the earlier ones left correct) as torchattacks'
    MultiAttack implements it, with the same budgets and per-attack seeds. With 5 classes (at
    an eps where APGD-CE leaves samples to the targeted attacks) they aim at the 4 others."""
    model = tiny_model("ann", num_classes=classes)
    data = self_labelled(model, 8)
    store = run_attacks(model, data, small(methods=("autoattack",), eps=(eps,), batch_size=8, iterations=2,
                                           queries=30))
    x, y = data.tensors
    seed = lambda m: batch_seed(0, f"autoattack/{m}", eps, 0)  # noqa: E731
    apgdt = torchattacks.APGDT(model, eps=eps, steps=2, n_restarts=1, seed=seed("apgd-t"), n_classes=classes)
    fab = torchattacks.FAB(model, eps=eps, steps=2, n_restarts=1, seed=seed("fab-t"), multi_targeted=True,
                           n_classes=classes)
    apgdt.n_target_classes = fab.n_target_classes = min(9, classes - 1)  # AutoAttack's standard: 9 at most
    reference = torchattacks.MultiAttack([
        torchattacks.APGD(model, eps=eps, steps=2, n_restarts=1, seed=seed("apgd-ce"), loss="ce"), apgdt, fab,
        torchattacks.Square(model, eps=eps, n_queries=30, n_restarts=1, seed=seed("square"), resc_schedule=False)])
    entry = store.entry("autoattack", eps)
    assert torch.equal(entry.adv, reference(x, y))
    # which attack broke each sample, checked against the model's own predictions
    fooled = predict(model, entry.adv) != y
    assert [b != "" for b in entry.broken_by] == fooled.tolist()
    assert set(entry.broken_by) <= {"", "apgd-ce", "apgd-t", "fab-t", "square"}


def test_default_budgets_are_autoattacks_standard_ones():
    """fra31/auto-attack, version 'standard' (L-inf): APGD-CE 100 iterations 1 restart; APGD-T
    100 iterations, 9 target classes; FAB-T 100 iterations, 9 target classes; Square 5000 queries,
    p_init 0.8, schedule not rescaled. torchattacks' AutoAttack would use 10 iterations."""
    model, cfg = tiny_model("ann"), AttackConfig(methods=("autoattack",))
    made = {m: METHODS[m].make(model, EPS, Budget.of(cfg), 100, 0) for m in ("apgd-ce", "apgd-t", "fab-t", "square")}
    assert (made["apgd-ce"].steps, made["apgd-ce"].n_restarts, made["apgd-ce"].loss) == (100, 1, "ce")
    assert (made["apgd-t"].steps, made["apgd-t"].n_restarts, made["apgd-t"].n_target_classes) == (100, 1, 9)
    assert (made["fab-t"].steps, made["fab-t"].n_restarts, made["fab-t"].n_target_classes) == (100, 1, 9)
    assert made["fab-t"].multi_targeted
    assert (made["square"].n_queries, made["square"].p_init, made["square"].rescale_schedule) == (5000, 0.8, False)
    assert torchattacks.AutoAttack(model)._autoattack.attacks[0].steps == 10  # why the suite composes its own
    assert METHODS["autoattack"].budget(cfg, 10) == {
        "components": ["apgd-ce", "apgd-t", "fab-t", "square"], "iterations": 100, "queries": 5000,
        "restarts": 1, "target_classes": 9, "standard": True}
    assert METHODS["autoattack"].budget(small(), 10)["standard"] is False


def test_budgets_are_stored_and_printed_as_used(tmp_path):
    model = tiny_model("ann")
    store = run_attacks(model, self_labelled(model), small(methods=("apgd-t", "square"), iterations=7, queries=30))
    assert store.config["budgets"] == {"apgd-t": {"iterations": 7, "restarts": 1, "loss": "dlr-targeted",
                                                  "target_classes": 9},
                                       "square": {"queries": 30, "restarts": 1, "p_init": 0.8}}
    assert read_store(write_store(tmp_path / "s.h5", store)).config["budgets"] == store.config["budgets"]


def test_square_ignores_the_gradient_mode_and_says_so():
    model = tiny_model("snn")
    data = self_labelled(model)
    a = run_attacks(model, data, small(methods=("square",)))
    b = run_attacks(model, data, small(methods=("square",), grad="bptr"))
    c = run_attacks(model, data, small(methods=("square",), attack_surrogates=("fast_sigmoid", "triangular")))
    assert torch.equal(a.entries[0].adv, b.entries[0].adv) and torch.equal(a.entries[0].adv, c.entries[0].adv)
    assert [e.method for e in c.entries] == ["square"]  # run once, not once per surrogate
    assert c.summary()[0]["grad"] == "none (gradient-free)"


def test_event_inputs_are_attacked_within_eps():
    """Event frames are [B, T, C, H, W]; APGD and Square assume images: the suite flattens T into
    channels around them."""
    model = tiny_model("snn", in_channels=2)
    x = torch.rand(4, 2, 2, 8, 8, generator=torch.Generator().manual_seed(0))  # [B, T, C, H, W]
    data = TensorDataset(x, predict(model, x))
    store = run_attacks(model, data, small(methods=("apgd-ce", "square")))
    for e in store.entries:
        assert e.adv.shape == x.shape and float(e.linf.max()) <= EPS + 1e-6 and float(e.linf.max()) > 0


# ------------------------------------------------------------------ worst case

def test_worst_case_is_at_most_every_attack_sample_by_sample():
    model = tiny_model("snn")
    data = self_labelled(model, 8)
    store = run_attacks(model, data, small(methods=("fgsm", "apgd-ce", "square"), eps=(0.0, 4 / 255, EPS),
                                           iterations=3, queries=20, attack_surrogates=("atan", "fast_sigmoid")))
    names = ["fgsm@atan", "fgsm@fast_sigmoid", "apgd-ce@atan", "apgd-ce@fast_sigmoid", "square"]
    assert store.methods == [*names, "worst"]
    for eps in (0.0, 4 / 255, EPS):
        worst = store.entry("worst", eps)
        robust = worst.pred == store.labels
        for name in names:
            single = store.entry(name, eps).pred == store.labels
            assert not (robust & ~single).any(), name  # robust under the worst case => robust under each
        assert worst.robust_acc <= min(store.entry(n, eps).robust_acc for n in names)
        # robust exactly where no attack broke it, and each broken sample names an attack that did
        every = torch.stack([store.entry(n, eps).pred == store.labels for n in names]).all(0)
        assert torch.equal(robust, every)
        for i, by in enumerate(worst.broken_by):
            assert (by == "") == bool(every[i])
            if by not in ("", "clean"):
                assert store.entry(by, eps).pred[i] != store.labels[i]
    assert store.entry("worst", EPS).robust_acc < store.clean_acc


def test_worst_case_takes_the_first_breaking_attack():
    """Hand-made predictions for 4 samples, labels all 0, sample 3 already wrong clean."""
    labels = torch.zeros(4, dtype=torch.int64)
    clean = torch.zeros(4, 1, 1, 1)

    def entry(name, pred, broken_by=None):
        pred = torch.tensor(pred)
        adv = clean + 0.01 * (1 + torch.arange(4).view(4, 1, 1, 1)) * (1 if name == "a" else -1)
        return AttackEntry(name, 0.1, adv.clamp(0, 1), pred, adv.abs().flatten(1).amax(1),
                           float((pred == 0).double().mean()), broken_by)

    a = entry("a", [0, 1, 0, 1])
    b = entry("b", [0, 2, 3, 1], broken_by=["", "apgd-t", "square", "clean"])
    (worst,) = worst_case([a, b], labels, clean_pred=torch.tensor([0, 0, 0, 5]))
    assert worst.broken_by == ["", "a", "b/square", "clean"]
    assert worst.pred.tolist() == [0, 1, 3, 1] and worst.robust_acc == 0.25
    assert torch.equal(worst.adv, torch.stack([a.adv[0], a.adv[1], b.adv[2], a.adv[3]]))


def test_broken_by_survives_the_store(tmp_path):
    model = tiny_model("ann")
    store = run_attacks(model, self_labelled(model, 4), small(methods=("autoattack", "fgsm"), iterations=2,
                                                               queries=10))
    back = read_store(write_store(tmp_path / "s.h5", store))
    for a, b in zip(store.entries, back.entries):
        assert a.broken_by == b.broken_by
    assert back.entry("worst", EPS).broken_by is not None and back.entry("fgsm", EPS).broken_by is None


# ------------------------------------------------------------------ masking verdict

class QuantizedLinear(nn.Module):
    """A linear classifier on 8x8 inputs; with `levels` it first rounds every pixel to that many
    levels, a saturating input layer whose gradient is zero almost everywhere: white-box attacks
    see no gradient, while Square's queries still cross the rounding steps."""

    kind = "ann"

    def __init__(self, levels: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.levels = levels
        self.fc = nn.Linear(64, 10)
        nn.init.normal_(self.fc.weight)

    def forward(self, x):
        if self.levels:
            x = torch.round(x * self.levels) / self.levels
        return self.fc(x.flatten(1))


def verdict(store) -> Check:
    return masking_verdict(store_checks(store))


def test_square_beating_apgd_flags_masking_on_a_saturating_input_layer():
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    cfg = small(methods=("apgd-ce", "square"), eps=(16 / 255,), iterations=10, queries=200, batch_size=16)
    masked, twin = QuantizedLinear(levels=4).eval(), QuantizedLinear().eval()
    flagged = run_attacks(masked, TensorDataset(x, predict(masked, x)), cfg)
    silent = run_attacks(twin, TensorDataset(x, predict(twin, x)), cfg)
    check = {c.name: c for c in store_checks(flagged)}["square_vs_whitebox"]
    assert not check.passed
    assert "gradient masking suspected: Square leaves" in check.message
    assert "fewer correct than the strongest white-box attack, APGD-CE" in check.message
    v = verdict(flagged)
    assert v.passed is False and "square_vs_whitebox" in v.message
    passed = {c.name: c for c in store_checks(silent)}["square_vs_whitebox"]
    sq, wb = (f"{silent.entry(m, 16 / 255).robust_acc:.1%}" for m in ("square", "apgd-ce"))
    assert passed.passed and passed.message == ("Square (gradient-free) does not beat the strongest white-box "
                                                f"attack: Square {sq} vs APGD-CE (10 iterations) {wb} correct at 16/255")
    assert verdict(silent).passed is True


class ZeroSpike(torch.autograd.Function):
    """Heaviside spikes whose surrogate gradient is zero: an SNN trained this way masks BPTT."""

    @staticmethod
    def forward(ctx, u):
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        return torch.zeros_like(grad)


@pytest.fixture
def zero_surrogate(monkeypatch):
    monkeypatch.setitem(neurons.SURROGATES, "zero", lambda: ZeroSpike.apply)


def test_surrogates_far_below_the_training_one_flag_masking(zero_surrogate):
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    masked, twin = tiny_model("snn", surrogate="zero"), tiny_model("snn", surrogate="atan")
    run = lambda m, s: run_attacks(m, TensorDataset(x, predict(m, x)),  # noqa: E731
                                   small(eps=(2 / 255,), iterations=5, batch_size=16, attack_surrogates=s))
    flagged, silent = run(masked, ("zero", "atan")), run(twin, ("atan", "fast_sigmoid"))
    check = {c.name: c for c in store_checks(flagged)}["surrogates[apgd-ce]"]
    assert not check.passed and "below the training surrogate zero's own" in check.message
    assert verdict(flagged).passed is False and "surrogates[apgd-ce]" in verdict(flagged).message
    assert {c.name: c for c in store_checks(silent)}["surrogates[apgd-ce]"].passed
    assert verdict(silent).passed is True


def test_verdict_without_evidence_says_not_tested():
    model = tiny_model("ann")
    v = verdict(run_attacks(model, self_labelled(model), small(methods=("apgd-ce",))))
    assert v.passed is None and v.message.startswith("not tested")
    assert "square" in v.message and "random floor" not in v.message  # what tests it on frames


def test_an_untested_verdict_names_what_would_test_it_under_each_threat():
    """Frames: a gradient-free attack, other surrogates, --check; events: the random floor."""
    frames, events = masking_verdict([], threat="frames"), masking_verdict([], threat="events")
    assert frames.passed is None and "square" in frames.message and "event-random" not in frames.message
    assert events.passed is None and "event-random" in events.message and "square" not in events.message


# ------------------------------------------------------------------ reliability

def test_resume_after_an_interruption_gives_the_same_store(tmp_path, monkeypatch):
    model = tiny_model("snn")
    data = self_labelled(model, 12)
    cfg = small(methods=("apgd-ce", "autoattack"), iterations=3, queries=20, attack_surrogates=("atan", "triangular"))
    whole = run_attacks(model, data, cfg)

    real, calls = run_module._attack_batch, []

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the second batch never finishes
        return real(*args, **kw)

    monkeypatch.setattr(run_module, "_attack_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_attacks(model, data, cfg, partial=Partial(tmp_path / "run.partial"))
    monkeypatch.setattr(run_module, "_attack_batch", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    assert sorted(p.name for p in (tmp_path / "run.partial").iterdir()) == ["batch-000000000.pt", "run.json"]
    with pytest.raises(SuiteError, match="pass --resume"):
        run_attacks(model, data, cfg, partial=Partial(tmp_path / "run.partial"))
    calls.clear()
    resumed = run_attacks(model, data, cfg, partial=Partial(tmp_path / "run.partial", resume=True))
    assert len(calls) == 2  # batches 2 and 3 only
    assert resumed.config == whole.config and resumed.methods == whole.methods
    for name in ("labels", "clean_pred", "clean"):
        assert torch.equal(getattr(resumed, name), getattr(whole, name))
    for a, b in zip(resumed.entries, whole.entries):
        assert (a.method, a.eps, a.broken_by) == (b.method, b.eps, b.broken_by)
        assert torch.equal(a.adv, b.adv) and torch.equal(a.pred, b.pred) and torch.equal(a.linf, b.linf)


def test_resume_refuses_other_settings_or_weights(tmp_path):
    model = tiny_model("ann")
    data = self_labelled(model, 4)
    run_attacks(model, data, small(), partial=Partial(tmp_path / "p"))  # left in place: the caller removes it
    with pytest.raises(SuiteError, match="other attack"):
        run_attacks(model, data, small(iterations=6), partial=Partial(tmp_path / "p", resume=True))
    with pytest.raises(SuiteError, match="other weights"):
        run_attacks(tiny_model("ann", seed=1), data, small(), partial=Partial(tmp_path / "p", resume=True))
    with pytest.raises(SuiteError, match="no partial results"):
        run_attacks(model, data, small(), partial=Partial(tmp_path / "q", resume=True))


@pytest.mark.parametrize("method", ["apgd-ce", "square", "autoattack"])
def test_samples_nest_and_seeds_repeat(method):
    model = tiny_model("snn")
    data = self_labelled(model, 8)
    cfg = small(methods=(method,), iterations=3, queries=20)
    eight, again = run_attacks(model, data, cfg), run_attacks(model, data, cfg)
    four = run_attacks(model, data, small(methods=(method,), iterations=3, queries=20, samples=4))
    assert torch.equal(eight.entries[0].adv, again.entries[0].adv)
    assert torch.equal(four.entries[0].adv, eight.entries[0].adv[:4])
    other = run_attacks(model, data, small(methods=(method,), iterations=3, queries=20, seed=1))
    assert not torch.equal(other.entries[0].adv, eight.entries[0].adv)


@pytest.mark.parametrize("kw, words", [
    (dict(queries=0), "--queries must be a whole number from 1 to 10000000, got 0"),
    (dict(iterations=0), "--iterations must be a whole number from 1 to 100000, got 0"),
    (dict(methods=("apgd",)), "unknown attack method 'apgd'"),
    (dict(attack_surrogates=("atan", "nope")), "unknown surrogate 'nope'"),
])
def test_bad_values_are_one_clear_error(kw, words):
    with pytest.raises(SuiteError, match=words):
        small(**kw)


def test_methods_needing_more_classes_are_refused():
    model = tiny_model("ann", num_classes=3)
    with pytest.raises(SuiteError, match="apgd-t needs at least 4 classes; the model has 3"):
        run_attacks(model, self_labelled(model), small(methods=("apgd-t",)))


# ------------------------------------------------------------------ what the runner passes on

@pytest.mark.parametrize("method", ["pgd", "autoattack"])
def test_attack_surrogate_is_the_one_the_attack_differentiates(method):
    """--attack-surrogate sigmoid on an atan-trained SNN crafts what the default attack crafts on
    the same weights trained with sigmoid, and not what the atan surrogate gives. Five classes
    (not the default ten), so the targeted components take the model's class count (4 targets)."""
    atan = tiny_model("snn", num_classes=5)
    data = self_labelled(atan, 4)
    sigmoid = tiny_model("snn", num_classes=5, surrogate="sigmoid")
    sigmoid.load_state_dict(atan.state_dict())  # the same weights, trained (says its config) with sigmoid
    budget = dict(methods=(method,), iterations=3, queries=20)
    chosen = run_attacks(atan, data, small(**budget, attack_surrogates=("sigmoid",)))
    own = run_attacks(sigmoid, data, small(**budget))
    default = run_attacks(atan, data, small(**budget))
    adv = lambda store: next(e for e in store.entries if e.method == method and e.eps == EPS).adv  # noqa: E731
    assert torch.equal(adv(chosen), adv(own))
    assert not torch.equal(adv(chosen), adv(default))


def test_store_config_names_both_models_the_samples_and_the_device():
    target, source = tiny_model("snn"), tiny_model("ann", seed=1)
    data = self_labelled(target, 4)
    store = run_attacks(target, data, small(methods=("fgsm",), grad="transfer", keep_clean=False), source=source)
    assert store.clean is None  # keep_clean=False keeps no copy of the inputs
    c = store.config
    assert c["model"] == target.cfg.to_dict() and c["source_model"] == source.cfg.to_dict()
    assert (c["n_samples"], c["device"], c["processes"], c["split"]) == (4, "cpu", 1, "test")
    assert c["gradient"] == {"grad": "transfer from ann (exact)", "surrogate": "-"}
    assert [(a["name"], a["grad"]) for a in c["attacks"]] == [("fgsm", "transfer from ann (exact)")]
    bare = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()  # a source without a suite config
    assert run_attacks(target, data, small(methods=("fgsm",), grad="transfer"),
                       source=bare).config["source_model"] is None


def test_samples_are_float32_and_labels_int64_whatever_the_dataset_gives():
    """A dataset of float64 numpy images and numpy integer labels is attacked as float32 / int64."""
    import numpy as np
    model = tiny_model("ann")
    x, y = self_labelled(model, 4).tensors

    class Numpy(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i].double().numpy(), np.int16(y[i])
    store = run_attacks(model, Numpy(), small(methods=("fgsm",)))
    assert store.clean.dtype == torch.float32 and store.labels.dtype == torch.int64
    assert torch.equal(store.clean, x) and torch.equal(store.labels, y)
    assert store.indices.dtype == torch.int64 and store.indices.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("samples, words", [(5, "asked for 5 samples but the test split has 4"),
                                            (0, "the test split is empty: nothing to attack")])
def test_sample_count_outside_the_split_is_refused(samples, words):
    model = tiny_model("ann")
    data = self_labelled(model, 4) if samples else TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0))
    config = small(methods=("fgsm",), samples=samples if samples else None)
    with pytest.raises(SuiteError, match=f"^{words}$"):
        run_attacks(model, data, config)
    if samples == 5:  # exactly the split's size is fine
        assert len(run_attacks(model, data, small(methods=("fgsm",), samples=4)).labels) == 4


def test_store_config_describes_an_snn_attack_by_its_own_gradient():
    snn = tiny_model("snn")
    store = run_attacks(snn, self_labelled(snn, 4), small(methods=("fgsm", "square")))
    assert [(a["name"], a["grad"], a["surrogate"]) for a in store.config["attacks"]] == [
        ("fgsm", "bptt", "atan"), ("square", "none (gradient-free)", "-")]


def test_a_transfer_attack_needs_its_source_and_only_it_takes_one():
    model = tiny_model("ann")
    data = self_labelled(model, 4)
    with pytest.raises(SuiteError, match="^gradient mode transfer needs a source model"):
        run_attacks(model, data, small(methods=("fgsm",), grad="transfer"))
    with pytest.raises(SuiteError, match="^a source model .* only applies to gradient mode transfer, not bptt$"):
        run_attacks(model, data, small(methods=("fgsm",)), source=tiny_model("ann", seed=1))


def test_resume_refuses_another_source_or_keep_clean(tmp_path):
    target, source = tiny_model("snn"), tiny_model("ann", seed=1)
    data = self_labelled(target, 4)
    cfg = small(methods=("fgsm",), grad="transfer")
    run_attacks(target, data, cfg, source=source, partial=Partial(tmp_path / "p"))
    with pytest.raises(SuiteError, match="other weights"):
        run_attacks(target, data, cfg, source=tiny_model("ann", seed=2), partial=Partial(tmp_path / "p", resume=True))
    # keep_clean is an attack setting now (AttackConfig.keep_clean): the refusal names the attack
    # settings, and those differ in keep_clean alone
    stored = json.loads((tmp_path / "p" / "run.json").read_text())["attack"]
    other = small(methods=("fgsm",), grad="transfer", keep_clean=False)
    assert {k for k in {*stored, *other.to_dict()} if stored.get(k) != other.to_dict().get(k)} == {"keep_clean"}
    with pytest.raises(SuiteError, match="come from a run with other attack; use the same options"):
        run_attacks(target, data, other, source=source, partial=Partial(tmp_path / "p", resume=True))
    assert run_attacks(target, data, cfg, source=source, partial=Partial(tmp_path / "p", resume=True)).clean is not None


def test_targeted_attacks_take_the_model_class_count():
    """APGD-T on a 5-class model aims at its 4 other classes: the same examples as
    torchattacks' APGDT given n_classes=5 and 4 target classes."""
    model = tiny_model("ann", num_classes=5)
    data = self_labelled(model, 4)
    store = run_attacks(model, data, small(methods=("apgd-t",), iterations=3))
    assert store.config["budgets"]["apgd-t"]["target_classes"] == 4
    x, y = data.tensors
    attack = torchattacks.APGDT(model, norm="Linf", eps=EPS, steps=3, n_restarts=1, seed=batch_seed(0, "apgd-t", EPS, 0),
                                eot_iter=1, rho=0.75, n_classes=5)
    attack.n_target_classes = 4
    assert torch.equal(store.entry("apgd-t", EPS).adv, attack(x, y))


def test_run_attacks_progress_counts_each_run_of_each_batch(monkeypatch):
    RecordedBar.made.clear()
    monkeypatch.setattr(run_module, "progress_bar", RecordedBar)
    model = tiny_model("ann")
    run_attacks(model, self_labelled(model, 8), small(methods=("fgsm", "pgd"), eps=(0.0, EPS)), progress=True)
    (bar,) = RecordedBar.made
    (task,) = bar.tasks
    assert not bar.disable and task.description == "attack" and bar.first_fields == [{"info": ""}]
    assert task.total == task.completed == 2 * 4  # 2 batches of 4, 2 methods x 2 eps each
    assert bar.texts == ["fgsm eps=0", "fgsm eps=8/255", "pgd eps=0", "pgd eps=8/255"] * 2
    RecordedBar.made.clear()
    run_attacks(model, self_labelled(model, 4), small(methods=("fgsm",)))  # no progress unless asked
    assert RecordedBar.made[0].disable


def test_resumed_batches_count_as_done_and_the_device_name_is_not_part_of_a_run(tmp_path, monkeypatch):
    """A run saved on "cpu" resumes on "cpu:0" (where a run executes does not change its
    batches); its saved batches advance the bar by all their runs at once."""
    model = tiny_model("ann")
    data = self_labelled(model, 8)
    cfg = small(methods=("fgsm", "pgd"))
    whole = run_attacks(model, data, cfg, partial=Partial(tmp_path / "p"))
    (tmp_path / "p" / "batch-000000004.pt").unlink()  # the second batch was not finished
    RecordedBar.made.clear()
    monkeypatch.setattr(run_module, "progress_bar", RecordedBar)
    resumed = run_attacks(model, data, cfg, device="cpu:0", partial=Partial(tmp_path / "p", resume=True), progress=True)
    (task,) = RecordedBar.made[0].tasks
    assert task.total == task.completed == 2 * 2
    assert RecordedBar.made[0].texts == ["fgsm eps=8/255", "pgd eps=8/255"]  # only the batch attacked again
    for a, b in zip(resumed.entries, whole.entries):
        assert torch.equal(a.adv, b.adv)
