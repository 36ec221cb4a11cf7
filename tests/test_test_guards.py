"""The test session's own guards (tests/conftest.py): no test reaches the network, and tests
of the C kernel skip, saying why, where no compiler can build it, while the PyTorch path runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _expect_refused(guard, call):
    before = len(guard.attempts)
    with pytest.raises(OSError, match="tests may not reach the network"):
        call()
    assert len(guard.attempts) == before + 1
    del guard.attempts[before:]  # refused as intended: not this test's failure


def test_connect_to_a_remote_address_is_refused(network_guard):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        _expect_refused(network_guard, lambda: s.connect(("192.0.2.1", 80)))  # TEST-NET-1
        _expect_refused(network_guard, lambda: s.connect_ex(("192.0.2.1", 80)))
    finally:
        s.close()


def test_urlopen_and_name_lookups_are_refused(network_guard):
    _expect_refused(network_guard, lambda: urllib.request.urlopen("http://example.com/", timeout=1))
    _expect_refused(network_guard, lambda: socket.getaddrinfo("example.com", 443))
    _expect_refused(network_guard, lambda: socket.create_connection(("198.51.100.7", 443), timeout=1))


def test_a_test_that_swallows_the_refusal_still_fails(network_guard):
    """Download code catches OSError; the guard's record fails the test anyway (checked by the
    autouse fixture after each test: here its check is run by hand)."""
    before = len(network_guard.attempts)
    try:
        socket.create_connection(("203.0.113.9", 80), timeout=1)
    except OSError:
        pass  # as a download's error handling would
    tried = network_guard.attempts[before:]
    assert len(tried) == 1 and "('203.0.113.9', 80)" in tried[0], tried
    del network_guard.attempts[before:]


def test_loopback_connections_work():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    thread.start()
    try:
        with socket.create_connection(("localhost", server.getsockname()[1]), timeout=5):
            thread.join(5)
        assert accepted
    finally:
        for s in accepted:
            s.close()
        server.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "localhost", b"127.0.0.1"])
def test_loopback_names_are_local(network_guard, host):
    assert network_guard.is_loopback(host)


@pytest.mark.parametrize("host", ["192.0.2.1", "10.0.0.1", "example.com", "2001:db8::1", "pypi.org"])
def test_other_hosts_are_not_local(network_guard, host):
    assert not network_guard.is_loopback(host)


@pytest.mark.slow  # a second pytest process: ~5 s idle, ~20 s on the shared machine
def test_without_a_c_compiler_kernel_tests_skip_and_the_torch_path_runs(tmp_path):
    """A pytest run with CC pointing nowhere and an empty kernel cache: the kernel variants of
    the hand-worked LIF tests skip with the reason; the PyTorch variants pass."""
    env = {**os.environ, "CC": "no-such-compiler", "SUITE_CACHE": str(tmp_path), "OMP_NUM_THREADS": "1"}
    env.pop("SUITE_LIF_KERNEL", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                          "tests/models/test_lif_by_hand.py", "-k", "without_autograd"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "2 passed, 2 skipped" in out, out
    assert "no working C compiler ('no-such-compiler')" in out, out
