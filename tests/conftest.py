"""Shared fixtures: small, fast settings for every test; no test reaches the network; tests of
the fused LIF kernel skip, with the reason, where no C compiler can build it."""

from __future__ import annotations

import ipaddress
import os
import socket
import warnings

import pytest
import torch

# One thread: on a shared 2-core machine this is much faster for the tiny tensors in tests.
# SUITE_TEST_THREADS=N runs them on N threads instead (another machine's summation order).
torch.set_num_threads(int(os.environ.get("SUITE_TEST_THREADS", "1")))
# SUITE_TEST_TORCH: torch's switches that other machines or users turn on, comma-separated:
# "deterministic" (torch.use_deterministic_algorithms), "matmul=high" or "matmul=medium"
# (torch.set_float32_matmul_precision: TF32, or bf16 through oneDNN on a CPU that has it).
for _switch in filter(None, os.environ.get("SUITE_TEST_TORCH", "").split(",")):
    if _switch == "deterministic":
        torch.use_deterministic_algorithms(True)
    elif _switch.startswith("matmul="):
        torch.set_float32_matmul_precision(_switch.split("=", 1)[1])
    else:
        raise ValueError(f"SUITE_TEST_TORCH: unknown switch {_switch!r}")


@pytest.fixture
def runner():
    from typer.testing import CliRunner
    return CliRunner()


@pytest.fixture
def tiny_cfg():
    """A tiny ResNet-20 config for 1-channel 16x16 inputs."""
    from suite.models import ModelConfig
    return lambda **kw: ModelConfig.from_dict({**dict(arch="resnet20", kind="snn", in_channels=1, input_size=16,
                                                     width=0.25, timesteps=3, num_classes=10), **kw})


# ------------------------------------------------------------------ the fused LIF kernel

def lif_kernel_or_skip():
    """The loaded LIF kernel library; skips the test, saying why, where it cannot be built."""
    from suite.models import lif_kernel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the suite's own "kernel unavailable" warning
        lib = lif_kernel.library()
    if lib is None:
        why = ("SUITE_LIF_KERNEL=0 switches it off" if os.environ.get("SUITE_LIF_KERNEL", "1") == "0"
               else f"no working C compiler ({os.environ.get('CC', 'cc')!r})")
        pytest.skip(f"the fused LIF kernel is not available: {why}; its PyTorch fallback is tested")
    return lib


@pytest.fixture
def needs_lif_kernel():
    """Skip the test (with the reason) where the fused LIF kernel cannot be built."""
    return lif_kernel_or_skip()


@pytest.fixture(params=["kernel", "torch"])
def path(request, monkeypatch):
    """Run the test once on the C kernel (skipped without a C compiler) and once on the
    PyTorch-ops path (always)."""
    from suite.models import lif_kernel

    if request.param == "kernel":
        lif_kernel_or_skip()
    else:
        monkeypatch.setattr(lif_kernel, "library", lambda: None)
    return request.param


# ------------------------------------------------------------------ no network

class NetworkRefused(OSError):
    """Raised by the socket guard: a test tried to reach a non-loopback address."""


class NetworkGuard:
    """Refuses connections and name lookups to anything but loopback, records each attempt.

    Installed for the whole session (the `network_guard` fixture); `attempts` is checked after
    every test, so a test whose code caught the refusal (as a download's error handling would)
    still fails.
    """

    LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}

    def __init__(self):
        self.attempts: list[str] = []
        self._saved: list[tuple[object, str, object]] = []

    @classmethod
    def is_loopback(cls, host) -> bool:
        if host is None:
            return True
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        host = str(host).strip("[]")
        if host.lower() in cls.LOCAL_NAMES:
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False  # a host name other than localhost: resolving it may reach the network

    def _check(self, family, address, what: str) -> None:
        if not isinstance(address, tuple) or (hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX):
            return  # Unix-domain sockets never leave the machine
        if not self.is_loopback(address[0]):
            self.attempts.append(f"{what} {address!r}")
            raise NetworkRefused(f"tests may not reach the network ({what} {address!r})")

    def _patch(self, owner, name, replacement) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def install(self) -> None:
        guard, real = self, socket.socket
        connect, connect_ex = real.connect, real.connect_ex
        getaddrinfo = socket.getaddrinfo

        def guarded_connect(sock, address):
            guard._check(sock.family, address, "connect to")
            return connect(sock, address)

        def guarded_connect_ex(sock, address):
            guard._check(sock.family, address, "connect to")
            return connect_ex(sock, address)

        def guarded_getaddrinfo(host, port, *args, **kwargs):
            guard._check(None, (host, port), "look up")
            return getaddrinfo(host, port, *args, **kwargs)

        self._patch(real, "connect", guarded_connect)
        self._patch(real, "connect_ex", guarded_connect_ex)
        self._patch(socket, "getaddrinfo", guarded_getaddrinfo)

    def uninstall(self) -> None:
        while self._saved:
            owner, name, value = self._saved.pop()
            setattr(owner, name, value)


@pytest.fixture(scope="session", autouse=True)
def network_guard():
    """The session's socket guard (see NetworkGuard)."""
    guard = NetworkGuard()
    guard.install()
    yield guard
    guard.uninstall()


@pytest.fixture(autouse=True)
def _no_network_attempt(network_guard):
    """Fail the test if it tried to reach the network, even if its code caught the refusal."""
    before = len(network_guard.attempts)
    yield
    tried = network_guard.attempts[before:]
    del network_guard.attempts[before:]
    if tried:
        pytest.fail(f"the test tried to reach the network: {'; '.join(tried)}")


@pytest.fixture
def deterministic_off():
    """Deterministic algorithms off for a test that checks how the suite scopes them (the run
    may have switched them on: SUITE_TEST_TORCH=deterministic); restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(before)


@pytest.fixture
def matmul_highest():
    """Full-precision float32 matmuls for a test about them, or one whose other half runs in a
    process that does not see the run's SUITE_TEST_TORCH (torchrun workers); restored after."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)
