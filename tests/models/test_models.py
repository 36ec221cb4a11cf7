"""SNN/ANN twins: names, shapes, gradients, LIF dynamics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from suite.errors import SuiteError
from suite.models import LIF, ModelConfig, ModelSpec, build_model, list_archs, mean_logits, set_surrogate
from suite.models.twin import GlobalAvgPool


@pytest.mark.parametrize("arch", list_archs())
def test_twin_module_names_identical(arch):
    data = dict(in_channels=1, input_size=16, num_classes=10)
    snn = build_model(ModelConfig(spec=ModelSpec(arch=arch, kind="snn", width=0.125), **data))
    ann = build_model(ModelConfig(spec=ModelSpec(arch=arch, kind="ann", width=0.125), **data))
    assert [n for n, _ in snn.named_modules()] == [n for n, _ in ann.named_modules()]
    assert list(snn.state_dict()) == list(ann.state_dict())


def test_archs_listed_in_natural_order():
    assert list_archs("resnet*") == ["resnet20", "resnet38", "resnet56", "resnet110", "resnet164"]


@pytest.mark.parametrize("arch", ["resnet20", "vgg11"])
def test_snn_output_shape_is_T_B_classes(arch, tiny_cfg):
    model = build_model(tiny_cfg(arch=arch, timesteps=3, num_classes=7))
    out = model(torch.rand(5, 1, 16, 16))
    assert out.shape == (3, 5, 7)
    assert mean_logits(out, model).shape == (5, 7)
    ann = build_model(tiny_cfg(arch=arch, kind="ann", num_classes=7))
    assert ann(torch.rand(5, 1, 16, 16)).shape == (5, 7)


def test_event_input_uses_its_own_time_axis(tiny_cfg):
    model = build_model(tiny_cfg(in_channels=2, timesteps=4))
    assert model(torch.rand(2, 4, 2, 16, 16)).shape == (4, 2, 10)
    with pytest.raises(SuiteError, match="time bins"):
        model(torch.rand(2, 3, 2, 16, 16))


def test_wrong_channel_count_is_a_clear_error(tiny_cfg):
    with pytest.raises(SuiteError, match="channels"):
        build_model(tiny_cfg())(torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "sigmoid", "triangular"])
def test_gradient_reaches_first_layer_through_surrogate(surrogate, tiny_cfg):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(surrogate=surrogate, width=0.5))
    x = torch.rand(4, 1, 16, 16, requires_grad=True)
    mean_logits(model(x), model).logsumexp(1).sum().backward()
    grad = model.conv1.weight.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_lif_matches_hand_computed_dynamics():
    lif = LIF(timesteps=3, tau=2.0, threshold=1.0)  # beta = 0.5
    x = torch.tensor([[0.6], [0.6], [1.2]])  # [T*B, 1] with B=1
    # u1 = 0.6 (no spike); u2 = 0.3 + 0.6 = 0.9 (no spike); u3 = 0.45 + 1.2 = 1.65 (spike)
    assert lif(x).flatten().tolist() == [0.0, 0.0, 1.0]
    x = torch.tensor([[1.5], [0.8], [0.1]])
    # u1 = 1.5 spike; reset -> u2 = 0 + 0.8 (no spike); u3 = 0.4 + 0.1 = 0.5
    assert lif(x).flatten().tolist() == [1.0, 0.0, 0.0]


def test_set_surrogate_changes_gradient_not_forward(tiny_cfg):
    torch.manual_seed(0)
    model = build_model(tiny_cfg())
    x = torch.rand(2, 1, 16, 16)

    def grad_and_out():
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out.sum().backward()
        return out.detach(), xi.grad

    out_a, g_a = grad_and_out()
    set_surrogate(model, "fast_sigmoid")
    out_b, g_b = grad_and_out()
    assert torch.equal(out_a, out_b)
    assert not torch.allclose(g_a, g_b)
    with pytest.raises(SuiteError, match="choose one of"):
        set_surrogate(model, "nope")


def test_unknown_names_list_valid_ones(tiny_cfg):
    """The model config refuses unknown names when built (before any model is), listing the valid ones."""
    with pytest.raises(SuiteError, match="^unknown architecture 'resnet21'; choose one of: resnet20, "):
        tiny_cfg(arch="resnet21")
    with pytest.raises(SuiteError, match="^unknown surrogate 'bogus'; choose one of: atan, "):
        tiny_cfg(surrogate="bogus")


def test_no_residual_removes_shortcuts(tiny_cfg):
    model = build_model(tiny_cfg(residual=False))
    assert all(m.shortcut is None for m in model.layer2)
    torch.manual_seed(0)
    x = torch.rand(2, 1, 16, 16)
    a = build_model(tiny_cfg(kind="ann", residual=False)).eval()
    b = build_model(tiny_cfg(kind="ann", residual=True)).eval()
    b.load_state_dict({k: v for k, v in a.state_dict().items()}, strict=False)
    assert not torch.allclose(a(x), b(x))


def test_sigmoid_surrogate_is_finite_far_below_threshold():
    from suite.models.neurons import get_surrogate
    x = torch.tensor([-10.0, -2.0, 0.0, 0.01, 3.0], requires_grad=True)
    get_surrogate("sigmoid")(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    sig = torch.sigmoid(25 * x.detach())
    torch.testing.assert_close(x.grad, 25 * sig * (1 - sig), rtol=1e-6, atol=0)


def test_global_pool_is_adaptive_average_pooling_without_its_cuda_backward():
    """(Moved from tests/train/test_device_paths.py.) The twins pool with a mean, whose CUDA
    backward is deterministic, not nn.AdaptiveAvgPool2d, whose CUDA backward is not."""
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    # two float64 means of H W = 30 terms, summed in any order: each within 29 u max|x| = 1.6e-14 (|x| < 5,
    # u = 2^-53) of the exact mean, so <= 3.2e-14 apart; a sum for a mean, the wrong axes or a float32 pass
    # (~1e-8, which torch.allclose's default rtol of 1e-5 let through) fail it
    assert torch.allclose(GlobalAvgPool()(x), nn.AdaptiveAvgPool2d(1)(x), atol=1e-13, rtol=0)
    for arch in ("resnet20", "vgg11"):
        model = build_model(ModelConfig(spec=ModelSpec(arch=arch, kind="ann", width=0.25), in_channels=1,
                                        input_size=8))
        assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in model.modules()), arch
