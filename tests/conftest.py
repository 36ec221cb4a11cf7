"""Shared fixtures: small, fast settings for every test."""

from __future__ import annotations

import pytest
import torch

# One thread: on a shared 2-core machine this is much faster for the tiny tensors in tests.
torch.set_num_threads(1)


@pytest.fixture
def runner():
    from typer.testing import CliRunner
    return CliRunner()


@pytest.fixture
def tiny_cfg():
    """A tiny ResNet-20 config for 1-channel 16x16 inputs."""
    from suite.models import ModelConfig
    return lambda **kw: ModelConfig(**{**dict(arch="resnet20", kind="snn", in_channels=1, input_size=16,
                                             width=0.25, timesteps=3, num_classes=10), **kw})


def cli(runner, *args):
    """Run the CLI in-process; return (exit code, stdout+stderr)."""
    from suite.cli import app
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output  # stdout and stderr, interleaved
