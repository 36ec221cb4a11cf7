"""Training against hand formulas: the TET loss value, that `--tet` training uses it, and one
optimizer step through the real training code (train()) against the SGD rule written by hand.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

import suite.train.loop as train_module
from suite.checkpoint import load_checkpoint
from suite.data import DataSpec
from suite.models import ModelSpec, build_model
from suite.train import Optimisation, TrainConfig, train
from suite.train.loop import loss_fn
from tests.support.helpers import cli

SNN, ANN = SimpleNamespace(kind="snn"), SimpleNamespace(kind="ann")


def fixed_logits(T=3, B=5, C=4):
    """Logits [T, B, C] that change a lot over time, so the TET loss and the CE of the
    time-averaged logits differ clearly."""
    g = torch.Generator().manual_seed(0)
    out = torch.randn(T, B, C, generator=g) * 3
    return out, torch.tensor([0, 1, 2, 3, 1])


def tet_by_hand(out, y):
    """TET (Deng et al. 2022): (1/T) sum_t CE(logits_t, y), CE averaged over the batch."""
    return sum(F.cross_entropy(out[t], y) for t in range(out.shape[0])) / out.shape[0]


def test_tet_loss_is_the_mean_over_time_of_the_per_step_cross_entropy():
    out, y = fixed_logits()
    # the same formula written out elementwise: -log softmax(out[t, b])[y_b], averaged over t and b
    logp = out - out.logsumexp(dim=2, keepdim=True)
    by_elements = -logp[:, torch.arange(5), y].mean()
    torch.testing.assert_close(tet_by_hand(out, y), by_elements, rtol=1e-6, atol=0)
    torch.testing.assert_close(loss_fn(out, y, SNN, tet=True), by_elements, rtol=1e-6, atol=0)
    plain = F.cross_entropy(out.mean(0), y)  # the loss without TET
    assert abs(plain - by_elements) > 0.5  # the two losses are told apart by this batch
    torch.testing.assert_close(loss_fn(out, y, SNN, tet=False), plain, rtol=1e-6, atol=0)


def test_tet_does_not_apply_to_an_ann():
    out, y = fixed_logits()
    torch.testing.assert_close(loss_fn(out[0], y, ANN, tet=True), F.cross_entropy(out[0], y), rtol=1e-6, atol=0)


def test_training_with_tet_option_minimises_the_tet_loss(runner, tmp_path, monkeypatch):
    """`suite train --tet`: every batch's loss is the TET formula of that batch's logits."""
    seen = []
    real = train_module.loss_fn

    def spy(out, y, model, tet):
        loss = real(out, y, model, tet)
        seen.append((out.detach().clone(), y.clone(), loss.detach().clone()))
        return loss

    monkeypatch.setattr(train_module, "loss_fn", spy)
    code, text = cli(runner, "train", "--dataset", "digits", "--size", "8", "--kind", "snn", "--timesteps", "2",
                     "--width", "0.25", "--epochs", "1", "--batch-size", "256", "--tet",
                     "--out", tmp_path, "--name", "tet.pt")
    assert code == 0, text
    assert seen, "training never called the loss"
    for out, y, loss in seen:
        assert out.dim() == 3
        torch.testing.assert_close(loss, tet_by_hand(out, y), rtol=1e-5, atol=0)
    out, y, loss = seen[0]
    assert abs(loss - F.cross_entropy(out.mean(0), y)) > 1e-4  # not the time-averaged CE
    assert load_checkpoint(tmp_path / "tet.pt").train_config["tet"] is True


def test_one_training_step_follows_the_sgd_rule_and_lowers_the_loss(tmp_path, monkeypatch):
    """train() for one epoch of one fixed batch: the weights move by exactly one SGD step,
    w1 = w0 - lr (dL/dw + weight_decay w0) (momentum has no history at the first step), and
    the loss on that batch goes down. Catches a missing `opt.step()`, a gradient that is not
    the loss's, a wrong learning rate or weight decay."""
    lr, wd = 0.05, 5e-4
    config = TrainConfig(data=DataSpec("digits", size=8),
                         model=ModelSpec(arch="resnet20", kind="snn", width=0.25, timesteps=2),
                         optim=Optimisation(epochs=1, batch_size=16, lr=lr, weight_decay=wd, momentum=0.9, seed=1))
    model_cfg = config.model_config
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8, generator=g), torch.arange(16) % 10
    # both splits are this one batch; the real loaders (shuffled: the order does not change a
    # full-batch gradient beyond float rounding) and training loop run on it
    monkeypatch.setattr(train_module, "load_dataset", lambda *args, **kwargs: TensorDataset(x, y))
    initial = {}
    real_build = train_module._Run.build

    def keep_initial(config, checkpoint, device):  # the weights train() starts from, before any step
        run = real_build(config, checkpoint, device)
        initial.update({k: v.detach().clone() for k, v in run.model.state_dict().items()})
        return run
    monkeypatch.setattr(train_module._Run, "build", keep_initial)

    train(config, tmp_path / "m.pt", show_progress=False)
    after = load_checkpoint(tmp_path / "m.pt").state["model"]

    # the same step by hand, from the same start, on the same batch (train mode: batch statistics)
    hand = build_model(model_cfg)
    hand.load_state_dict(initial)
    hand.train()
    loss0 = F.cross_entropy(hand(x).mean(0), y)  # [T, B, classes] -> time-averaged logits
    loss0.backward()
    params = dict(hand.named_parameters())
    assert params
    for name, p in params.items():
        expected = initial[name] - lr * (p.grad + wd * initial[name])
        torch.testing.assert_close(after[name], expected, rtol=1e-5, atol=1e-7, msg=name)
    assert any(not torch.equal(after[n], initial[n]) for n in params)

    trained = build_model(model_cfg)
    trained.load_state_dict(after)
    trained.train()
    with torch.no_grad():
        loss1 = F.cross_entropy(trained(x).mean(0), y)
    assert loss1 < loss0.detach() - 1e-3, (float(loss0), float(loss1))
