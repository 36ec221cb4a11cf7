"""Training: resume equivalence, determinism, checkpoint round trip."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from suite.checkpoint import load_checkpoint, load_model
from suite.data import DataSpec
from suite.errors import SuiteError
from suite.models import ModelConfig, ModelSpec
from suite.train import Optimisation, TrainConfig, fit_model, train
from tests.support.helpers import interrupt_after_first_epoch

SPEC = DataSpec("digits", size=8)
MODEL = ModelSpec(arch="resnet20", kind="snn", width=0.25, timesteps=2)


def tiny(kind="snn") -> ModelConfig:
    return fit_model(replace(MODEL, kind=kind), SPEC)


def run_config(kind="snn", data=SPEC, **optim) -> TrainConfig:
    """The tiny model on `data`, trained with `optim` (Optimisation fields)."""
    return TrainConfig(data=data, model=replace(MODEL, kind=kind), optim=Optimisation(**optim))


def small_train(path, epochs=2, **kw):
    return train(run_config(epochs=epochs, batch_size=128, lr=0.05, seed=3), path, show_progress=False, **kw)


def test_resume_gives_same_weights(tmp_path):
    full = small_train(tmp_path / "full.pt")
    with pytest.raises(KeyboardInterrupt):
        small_train(tmp_path / "cut.pt", on_epoch_end=interrupt_after_first_epoch)
    assert load_checkpoint(tmp_path / "cut.pt").epoch == 1
    resumed = small_train(tmp_path / "cut.pt", resume=True)
    a = load_checkpoint(full.checkpoint).state["model"]
    b = load_checkpoint(resumed.checkpoint).state["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.metrics == full.metrics


def test_same_seed_same_result(tmp_path):
    a = small_train(tmp_path / "a.pt", epochs=1)
    b = small_train(tmp_path / "b.pt", epochs=1)
    sa, sb = (load_checkpoint(r.checkpoint).state["model"] for r in (a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_round_trip(tmp_path):
    result = small_train(tmp_path / "m.pt", epochs=1)
    model, ckpt = load_model(result.checkpoint)
    assert ckpt.model_config == tiny()
    assert ckpt.data_spec.name == "digits" and ckpt.epoch == 1
    assert ckpt.train_config["seed"] == 3
    x = torch.rand(3, 1, 8, 8)
    assert model(x).shape == (2, 3, 10)
    assert not model.training


def test_resume_refuses_other_settings(tmp_path):
    small_train(tmp_path / "m.pt", epochs=1)
    with pytest.raises(SuiteError, match="other settings"):
        train(run_config(epochs=2, batch_size=64, lr=0.05, seed=3), tmp_path / "m.pt",
              show_progress=False, resume=True)
    # each refusal names what differs: exactly the two changed settings, in order
    with pytest.raises(SuiteError, match=r"m\.pt was trained with other settings \(batch_size, seed\); cannot"):
        train(run_config(epochs=1, batch_size=64, lr=0.05, seed=4), tmp_path / "m.pt",
              show_progress=False, resume=True)
    with pytest.raises(SuiteError, match=r"m\.pt already finished all 1 epochs; nothing to resume"):
        small_train(tmp_path / "m.pt", epochs=1, resume=True)  # epoch 1 of 1 is done
    with pytest.raises(SuiteError, match=r"m\.pt was trained with another model config"):
        train(run_config("ann", epochs=1, batch_size=128, lr=0.05, seed=3), tmp_path / "m.pt",
              show_progress=False, resume=True)
    with pytest.raises(SuiteError, match=r"m\.pt was trained on digits with other data settings"):
        train(run_config(data=DataSpec("digits", size=8, seed=5), epochs=1, batch_size=128, lr=0.05, seed=3),
              tmp_path / "m.pt", show_progress=False, resume=True)
    with pytest.raises(SuiteError, match=r"--resume given but no checkpoint at \S+none\.pt"):
        small_train(tmp_path / "none.pt", resume=True)


def test_foreign_checkpoint_is_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(SuiteError, match="not a suite checkpoint"):
        load_checkpoint(other)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SuiteError, match="not a readable suite checkpoint"):
        load_checkpoint(garbage)


def test_checkpoint_of_other_architecture_is_refused(tmp_path):
    result = small_train(tmp_path / "m.pt", epochs=1)
    ckpt = load_checkpoint(result.checkpoint)
    ckpt.model_config = fit_model(replace(MODEL, arch="vgg11"), SPEC)
    with pytest.raises(SuiteError, match="do not fit vgg11"):
        ckpt.build()


def test_tet_loss_trains(tmp_path):
    cfg = run_config(epochs=1, batch_size=128, lr=0.05, seed=0, tet=True)
    result = train(cfg, tmp_path / "tet.pt", show_progress=False)
    assert result.metrics[0]["train_loss"] > 0


def test_model_config_fits_event_and_static_data():
    from suite.data import get_dataset_info
    dvs = DataSpec("digits-dvs", size=8, timesteps=3)
    snn = fit_model(ModelSpec(arch="resnet20", kind="snn", width=0.25, timesteps=3), dvs)
    assert (snn.spec.kind, snn.in_channels, snn.spec.timesteps, snn.input_size, snn.num_classes) == ("snn", 2, 3, 8, 10)
    # a training run checks that the model's T is the frames' T
    with pytest.raises(SuiteError, match=r"^digits-dvs frames have T=3 bins; the model must use the same T, not 4$"):
        TrainConfig(data=dvs, model=ModelSpec(arch="resnet20", kind="snn", timesteps=4))
    assert fit_model(ModelSpec(arch="resnet20", kind="ann", timesteps=4), dvs).spec.timesteps == 4  # an ANN ignores T
    c100 = fit_model(ModelSpec(arch="vgg11", kind="ann"), DataSpec("cifar100", size=16))
    info = get_dataset_info("cifar100")
    assert (c100.spec.kind, c100.in_channels, c100.input_size, c100.num_classes) == ("ann", 3, 16, 100)
    assert (tuple(c100.mean), tuple(c100.std)) == (tuple(info.normalisation[0]), tuple(info.normalisation[1]))
