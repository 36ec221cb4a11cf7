"""Training's CUDA code paths, exercised on CPU where the same code runs: the AMP dtype and
mixed-precision steps, the channels_last memory format, deterministic mode, TensorBoard's
absence, and the training flags on the command line.

The model layers on those paths (the LIF under bfloat16 autocast and on channels_last input,
firing-rate counting) are tested in tests/models/test_lif.py, the global pool in
tests/models/test_models.py.

What only a GPU can show (bf16 speed, NCCL, cuDNN's deterministic kernels) is in
benchmarks/gpu_check.py.
"""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from suite.checkpoint import load_checkpoint
from suite.models import ModelConfig, ModelSpec, build_model
from suite.train.loop import amp_dtype, deterministic_algorithms, memory_format, train_step
from tests.support.helpers import FAST, assert_one_line_error, cli

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def tiny(kind: str = "snn", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    spec = ModelSpec(arch="resnet20", kind=kind, width=0.25, timesteps=2, threshold=0.25)
    return build_model(ModelConfig(spec=spec, in_channels=1, input_size=8))


def step(model: nn.Module, autocast_dtype=None, scaler=None):
    """One SGD step (lr 0.1) on `batch()`; returns the loss and the weight change of every parameter."""
    x, y = batch()
    before = [p.detach().clone() for p in model.parameters()]
    loss, _ = train_step(model, model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, tet=False,
                         autocast_dtype=autocast_dtype, scaler=scaler)
    return loss, torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])


def batch(n: int = 8):
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_amp_is_bf16_where_the_gpu_has_it_else_fp16_and_off_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype(CUDA, True) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_dtype(CUDA, True) == torch.float16
    assert amp_dtype(CUDA, False) is None
    assert amp_dtype(CPU, True) is None


def test_channels_last_on_cuda_only():
    assert memory_format(CUDA) == torch.channels_last
    assert memory_format(CPU) == torch.contiguous_format


def same_update(change: torch.Tensor, reference: torch.Tensor) -> bool:
    """The same step to reduced precision: cosine > 0.9 and length within 20%. (On this
    20-layer ANN with BatchNorm over 8 samples, bf16 gives cosine 0.96, fp16 0.99; a wrong
    sign or a gradient left scaled by 2^10 is far outside.)"""
    cosine = torch.dot(change, reference) / (change.norm() * reference.norm())
    return bool(cosine > 0.9) and 0.8 < (change.norm() / reference.norm()).item() < 1.2


def test_bf16_step_agrees_with_float32_to_bf16_precision():
    """On the ANN twin (smooth: no spikes to flip) the bf16 step's loss is the float32 one to
    bf16's 8-bit mantissa (relative 1e-2), and its update is the same step."""
    loss32, change32 = step(tiny("ann"))
    loss16, change16 = step(tiny("ann"), torch.bfloat16)
    assert loss16.item() == pytest.approx(loss32.item(), rel=1e-2)
    assert same_update(change16, change32)


def test_fp16_step_goes_through_the_gradient_scaler():
    """GPUs without bfloat16 get float16 and a GradScaler: the loss is scaled by 2^10 for
    backward and the gradients unscaled before the step, so the update is the float32 one
    (without the unscaling it would be 1024 times longer)."""
    _, change32 = step(tiny("ann"))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=1)
    _, change16 = step(tiny("ann"), torch.float16, scaler)
    assert scaler.get_scale() == 2.0 ** 11  # the scaler took the step: finite gradients, scale grown
    assert same_update(change16, change32)


def test_deterministic_mode_is_scoped_and_changes_no_cpu_result(deterministic_off):
    assert not torch.are_deterministic_algorithms_enabled()
    loss_free, change_free = step(tiny("snn"))
    with deterministic_algorithms(True, CPU):
        assert torch.are_deterministic_algorithms_enabled()
        loss_fixed, change_fixed = step(tiny("snn"))
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(loss_free, loss_fixed) and torch.equal(change_free, change_fixed)


def test_tensorboard_missing_is_one_error_line(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails
    code, out = cli(runner, "train", *FAST, "--epochs", "1", "--out", tmp_path, "--tensorboard", tmp_path / "tb")
    assert_one_line_error(code, out, "--tensorboard needs the tensorboard package", "pip install")
    assert not (tmp_path / "tb").exists() and not list(tmp_path.glob("*.pt"))


def test_training_flags_are_recorded_in_the_checkpoint(runner, tmp_path, deterministic_off):
    code, out = cli(runner, "train", *FAST, "--epochs", "1", "--out", tmp_path, "--name", "m", "--no-amp",
                    "--deterministic", "--sync-bn", "--device", "cpu")
    assert code == 0, out
    cfg = load_checkpoint(tmp_path / "m.pt").train_config
    assert (cfg["amp"], cfg["deterministic"], cfg["sync_bn"]) == (False, True, True)
    assert not torch.are_deterministic_algorithms_enabled()  # restored after training
