"""Adversarial stores (suite.results.attacks) and clean-vs-adversarial CKA (suite.cka.clean_adv)."""

from pathlib import Path

import h5py
import pytest
import torch

import suite.attacks.run as run_module
from suite.attacks import AttackConfig, attack_checkpoint, run_attacks
from suite.attacks.jobs import default_store_name
from suite.attacks.resume import Partial
from suite.checkpoint import save_checkpoint
from suite.cka.clean_adv import clean_vs_adv
from suite.data import DataSpec, load_dataset
from suite.errors import SuiteError
from suite.results.attacks import check_model, read_store, rebuild_clean, write_store
from suite.results.h5 import write_h5
from suite.where import Where
from tests.attacks.test_attacks import tiny_model
from tests.support.helpers import RecordedBar

DIGITS8 = DataSpec("digits", size=8)


def attacked(model, eps=(0.0, 8 / 255), n=8, methods=("fgsm", "pgd"), keep_clean=True):
    """A real run on the first n digits of the test split, with the meta a CLI run records."""
    cfg = AttackConfig(methods=methods, eps=eps, steps=2, samples=n, batch_size=8, keep_clean=keep_clean)
    meta = {"checkpoint": "tiny.pt", "data": DIGITS8.to_dict()}
    return run_attacks(model, load_dataset(DIGITS8, ".", "test"), cfg, meta=meta)


@pytest.fixture(scope="module")
def snn():
    return tiny_model("snn")


@pytest.fixture(scope="module")
def store(snn):
    return attacked(snn)


def test_store_round_trip(store, tmp_path):
    path = write_store(tmp_path / "attacks" / "run.h5", store, command="suite attack test")
    back = read_store(path)
    for name in ("indices", "labels", "clean_pred", "clean"):
        assert torch.equal(getattr(back, name), getattr(store, name)), name
    assert [(e.method, e.eps) for e in back.entries] == [(e.method, e.eps) for e in store.entries]
    for a, b in zip(back.entries, store.entries):
        assert torch.equal(a.adv, b.adv) and torch.equal(a.pred, b.pred) and torch.equal(a.linf, b.linf)
        assert a.adv.dtype == torch.float32
    assert back.config == store.config
    assert back.summary() == store.summary()
    with h5py.File(path) as f:
        assert f.attrs["kind"] == "attack" and f.attrs["command"] == "suite attack test"


def test_summary_has_one_row_per_method_and_eps(store):
    rows = store.summary()
    assert [(r["method"], r["eps_label"]) for r in rows] == [("fgsm", "0"), ("fgsm", "8/255"),
                                                             ("pgd", "0"), ("pgd", "8/255"),
                                                             ("worst", "0"), ("worst", "8/255")]
    attacks = [r for r in rows if r["method"] != "worst"]
    assert {r["grad"] for r in attacks} == {"bptt"} and {r["attack_surrogate"] for r in attacks} == {"atan"}
    assert {r["grad"] for r in rows if r["method"] == "worst"} == {"worst case over 2 attacks"}
    assert all(r["linf_max"] <= r["eps"] + 1e-6 for r in rows)
    assert rows[0]["robust_acc"] == rows[0]["clean_acc"] == store.clean_acc


def test_store_records_what_rebuilds_the_run(store):
    cfg = store.config
    assert cfg["attack"]["methods"] == ["fgsm", "pgd"] and cfg["attack"]["steps"] == 2
    assert cfg["model"]["kind"] == "snn" and cfg["checkpoint"] == "tiny.pt"
    assert cfg["data"]["name"] == "digits" and cfg["split"] == "test"
    assert torch.equal(store.indices, torch.arange(8))


def test_write_refuses_a_perturbation_over_budget(store, tmp_path):
    broken = attacked(tiny_model("snn"), eps=(8 / 255,), methods=("fgsm",), n=4)
    broken.entries[0].adv = (broken.entries[0].adv + 0.1).clamp(0, 1)
    broken.entries[0].linf = (broken.entries[0].adv - broken.clean).abs().flatten(1).amax(1)
    with pytest.raises(SuiteError, match="exceeds its budget"):
        write_store(tmp_path / "bad.h5", broken)
    assert not (tmp_path / "bad.h5").exists()


def test_reading_a_foreign_or_broken_file_is_one_error(store, tmp_path):
    cka = write_h5(tmp_path / "cka.h5", "cka", {}, lambda f: None)
    with pytest.raises(SuiteError, match="holds a 'cka' result, expected 'attack'"):
        read_store(cka)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(SuiteError, match="not a readable HDF5 file"):
        read_store(garbage)
    empty = write_h5(tmp_path / "empty.h5", "attack", {}, lambda f: None)
    with pytest.raises(SuiteError, match="not a complete attack store"):
        read_store(empty)
    path = write_store(tmp_path / "ok.h5", store)
    with h5py.File(path, "r+") as f:
        f["attacks/01"].attrs["robust_acc"] += 0.125  # tamper: no longer what the predictions say
    with pytest.raises(SuiteError, match="robust accuracy of fgsm eps=8/255 does not match"):
        read_store(path)


def test_rebuild_clean_matches_the_stored_inputs(store):
    x = rebuild_clean(store, ".", data_spec=DIGITS8)
    assert torch.equal(x, store.clean)


def test_rebuild_clean_without_stored_inputs(snn):
    lean = attacked(snn, eps=(0.0,), methods=("fgsm",), n=4, keep_clean=False)
    assert lean.clean is None
    assert torch.equal(rebuild_clean(lean, "."), lean.entries[0].adv)  # eps 0: adv is clean


def test_rebuild_clean_names_a_data_mismatch(store):
    with pytest.raises(SuiteError, match="different data: size 8 vs 16"):
        rebuild_clean(store, ".", data_spec=DataSpec("digits", size=16))


def test_check_model_names_a_model_mismatch(store, snn):
    check_model(store, snn.cfg)
    other = tiny_model("ann").cfg
    with pytest.raises(SuiteError, match="different model: kind 'snn' vs 'ann'"):
        check_model(store, other)


@pytest.mark.parametrize("kind", ["snn", "ann"])
def test_clean_vs_adv_diagonal_is_one_at_eps_zero(kind):
    model = tiny_model(kind)
    store = attacked(model, eps=(0.0, 16 / 255), methods=("fgsm",))
    results = clean_vs_adv(model, store, layers=["conv1", "layer2.0.conv1", "fc"], batch_size=8)
    assert list(results) == [0.0, 16 / 255]
    diag0 = results[0.0].matrix.diagonal()
    assert torch.allclose(diag0, torch.ones_like(diag0), atol=1e-6)
    assert results[0.0].compare == "clean-adv" and results[16 / 255].config["eps_label"] == "16/255"
    assert float(results[16 / 255].matrix.diagonal().min()) < 1 - 1e-6  # the attack moved something


def test_clean_vs_adv_needs_a_method_when_the_store_has_several(store, snn):
    with pytest.raises(SuiteError, match="several methods"):
        clean_vs_adv(snn, store)


def test_attack_checkpoint_records_its_provenance(snn, tmp_path):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", snn.cfg, DIGITS8, {}, 1, [], {"model": snn.state_dict()})
    cfg = AttackConfig(methods=("fgsm",), eps=(4 / 255,), samples=4, batch_size=4)
    store = attack_checkpoint(ckpt, cfg, Where(tmp_path, device="cpu", data_root=".", show_progress=False))
    assert store.config["checkpoint"] == str(ckpt) and store.config["data"]["size"] == 8
    assert store.config["model"] == snn.cfg.to_dict()
    assert torch.equal(rebuild_clean(store, "."), store.clean)


def test_attack_checkpoint_loads_a_transfer_source_and_another_dataset(tmp_path):
    """A 3-channel SNN trained on CIFAR-10 (not needed here), attacked on digits shaped to fit it
    with examples crafted on an ANN checkpoint: both files and the data choice reach the store."""
    snn3, ann3 = tiny_model("snn", in_channels=3), tiny_model("ann", in_channels=3, seed=1)
    own = DataSpec("cifar10", size=8)
    target = save_checkpoint(tmp_path / "snn.pt", snn3.cfg, own, {}, 1, [], {"model": snn3.state_dict()})
    source = save_checkpoint(tmp_path / "ann.pt", ann3.cfg, own, {}, 1, [], {"model": ann3.state_dict()})
    cfg = AttackConfig(methods=("fgsm",), eps=(4 / 255,), samples=4, batch_size=4, grad="transfer", keep_clean=False)
    store = attack_checkpoint(target, cfg, Where(tmp_path, device="cpu", show_progress=False),
                              source_checkpoint=source, dataset="digits")
    assert store.config["source_checkpoint"] == str(source)
    assert store.config["data"]["name"] == "digits" and store.config["data"]["channels"] == 3
    assert store.config["data_root"] == "datasets"  # Where's default root
    assert store.clean is None  # keep_clean=False reached run_attacks
    x = load_dataset(DataSpec("digits", size=8, channels=3), ".", "test")
    crafted = run_attacks(snn3, x, cfg, source=ann3)  # the same run on the models in memory
    assert torch.equal(store.entries[0].adv, crafted.entries[0].adv)


@pytest.mark.parametrize("settings, name", [
    (dict(methods=("fgsm", "pgd")), "snn-fgsm-pgd-bptt"),
    (dict(methods=("pgd",), attack_surrogates=("pcw:0.5", "exp:1")), "snn-pgd-bptt-pcw:0.5-exp:1"),
    (dict(methods=("square",)), "snn-square"),  # gradient-free: no gradient in the name
    (dict(methods=("ensemble",), grad="assg"), "snn-ensemble"),  # members bring their own
    (dict(methods=("ensemble", "square"), attack_surrogates=("pcw:0.5",)), "snn-ensemble-square"),
    (dict(methods=("ensemble",), grad="transfer"), "snn-ensemble-transfer"),
    (dict(methods=("apgd-ce", "ensemble"), grad="rga"), "snn-apgd-ce-ensemble-rga"),
])
def test_a_store_is_named_for_its_methods_and_the_gradient_they_use(settings, name):
    assert default_store_name(Path("runs/snn.pt"), AttackConfig(**settings).for_model(snn=True)) == name


def test_attack_checkpoint_runs_where_it_is_told(snn, tmp_path, monkeypatch):
    """`where.device` is read (a device torch does not know is refused, not replaced by auto),
    and `where.show_progress` reaches the runner's bar."""
    ckpt = save_checkpoint(tmp_path / "tiny.pt", snn.cfg, DIGITS8, {}, 1, [], {"model": snn.state_dict()})
    cfg = AttackConfig(methods=("fgsm",), eps=(4 / 255,), samples=4, batch_size=4)
    with pytest.raises(SuiteError) as exc:
        attack_checkpoint(ckpt, cfg, Where(tmp_path, device="tpu7", data_root=".", show_progress=False))
    assert str(exc.value) == "unknown device 'tpu7'; use auto, cpu, cuda or cuda:N"
    RecordedBar.made.clear()
    monkeypatch.setattr(run_module, "progress_bar", RecordedBar)
    attack_checkpoint(ckpt, cfg, Where(tmp_path, device="cpu", data_root=".", show_progress=True))
    (bar,) = RecordedBar.made
    assert not bar.disable and bar.tasks[0].completed == 1  # one batch, one run


def test_attack_checkpoint_saves_batches_and_resumes_from_them(snn, tmp_path):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", snn.cfg, DIGITS8, {}, 1, [], {"model": snn.state_dict()})
    cfg = AttackConfig(methods=("fgsm",), eps=(4 / 255,), samples=4, batch_size=4)
    where = Where(tmp_path, device="cpu", data_root=".", show_progress=False)
    first = attack_checkpoint(ckpt, cfg, where, partial=Partial(tmp_path / "part"))  # resume: False by default
    assert store_checks_dir(tmp_path / "part")
    assert first.config["source_checkpoint"] is None
    again = attack_checkpoint(ckpt, cfg, where, partial=Partial(tmp_path / "part", resume=True))
    assert torch.equal(again.entries[0].adv, first.entries[0].adv)


def store_checks_dir(folder) -> bool:
    """A partial-results folder with at least one saved file in it."""
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))
