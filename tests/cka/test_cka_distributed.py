"""`suite cka` under torchrun: the processes share the batches, their float64 HSIC sums are
all-reduced (MinibatchCKA.all_reduce), and rank 0 alone writes the result, which equals a
single-process run's to 1e-9: the same sums added in another order (measured: CKA 3e-16,
HSIC 3e-14 on values up to 2e3; bootstrap intervals identical, the batches gathered in order).
Bound: 5 batch values summed in two orders, <= 4 u sum|h| = 4 u 5 2e3 = 4.4e-12 for HSIC
(u = 2^-53), less for CKA. It presumes each batch's float32 forward pass gives the same bits in
a 1-thread rank as in this process (true of the CPU kernels measured here); a kernel that split
its sums over threads would show as ~1e-7, float32's rounding.

The two-process test starts `python -m torch.distributed.run --nproc_per_node 2 -m suite cka`
(gloo on 127.0.0.1, a free port) once per module; the single-process reference runs here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from suite import distributed
from suite.cka.jobs import run_cka
from suite.cka.settings import CKAConfig, CKAInputs
from suite.data.loaders import shard_loader
from suite.errors import SuiteError
from suite.results.cka import CKAResult
from suite.where import Where
from tests.support.helpers import free_port, make_checkpoint

ROOT = Path(__file__).resolve().parents[2]
# 42 samples in batches of 8: five full batches and a last one of 2 (dropped, n < 4).
# Over 2 processes: batches 0-2 on rank 0, batches 3-5 on rank 1.
ARGS = ["--compare", "models", "--samples", "42", "--batch-size", "8", "--time", "each", "--bootstrap", "40",
        "--device", "cpu", "--seed", "3"]


def _louder(model) -> None:
    """Convolution weights x3, so the untrained SNN's deep layers spike (silent ones give NaN CKA)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(3)


def _checkpoints(folder: Path) -> tuple[Path, Path]:
    snn = make_checkpoint(folder / "snn.pt", kind="snn", size=8, timesteps=2, seed=1, spoil=_louder)
    ann = make_checkpoint(folder / "ann.pt", kind="ann", size=8, seed=2)
    return snn, ann


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Checkpoints, and the result folder of a 2-process torchrun `suite cka` over them."""
    folder = tmp_path_factory.mktemp("cka-torchrun")
    snn, ann = _checkpoints(folder)
    out = folder / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONPATH": str(ROOT),
           "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "suite", "cka", *ARGS, "--model", str(snn), "--model2", str(ann),
           "--data-root", str(folder / "data"), "--out", str(out), "--name", "r"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder, snn, ann, out, proc.stdout


def test_two_processes_equal_one_process(two_processes, matmul_highest):
    folder, snn, ann, out, _ = two_processes
    got = CKAResult.load(out / "r.h5")
    config = CKAConfig(compare="models", samples=42, batch_size=8, time="each", bootstrap=40, seed=3)
    run = run_cka(config, CKAInputs(model=snn, model2=ann),
                  Where(folder / "one", device="cpu", data_root=folder / "data", show_progress=False), name="r")
    one = CKAResult.load(run.path)
    assert got.n_samples == one.n_samples == 40 and got.n_batches == one.n_batches == 5
    assert got.config["n_dropped"] == one.config["n_dropped"] == 2
    assert got.config["processes"] == 2 and one.config["processes"] == 1
    assert torch.isfinite(one.matrix).all()
    for field in ("matrix", "hsic_ab", "hsic_aa", "hsic_bb", "ci_lo", "ci_hi"):
        a, b = getattr(got, field), getattr(one, field)
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0, equal_nan=True, msg=field)


def test_only_rank_0_writes_and_prints(two_processes):
    _, _, _, out, stdout = two_processes
    assert sorted(p.name for p in out.iterdir()) == ["r.h5", "r.png"]
    assert stdout.count("result:") == 1


# ----------------------------------------------------------------------------- one process

def test_one_process_needs_no_process_group():
    assert not distributed.is_initialized() and distributed.world_size() == 1
    loader = DataLoader(TensorDataset(torch.arange(10)), batch_size=4)
    assert shard_loader(loader) is loader


@pytest.mark.parametrize("world", [2, 3, 4])
def test_shard_loader_gives_each_rank_whole_batches_in_order(monkeypatch, world):
    data = TensorDataset(torch.arange(27))  # batches of 4: six full ones and one of 3
    single = [x.tolist() for (x,) in DataLoader(data, batch_size=4)]
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    shares = []
    for r in range(world):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shares.append([x.tolist() for (x,) in shard_loader(DataLoader(data, batch_size=4))])
    assert [b for share in shares for b in share] == single  # rank order is batch order
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_shard_loader_refuses_a_shuffled_loader(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(SuiteError, match="ordered loader"):
        shard_loader(DataLoader(TensorDataset(torch.arange(10)), batch_size=4, shuffle=True))
