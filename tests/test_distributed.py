"""Under torchrun: the process-group helpers, training with DistributedDataParallel, sharded attacks.

The multi-process tests start 2 CPU processes with torchrun's environment (gloo on 127.0.0.1,
a free port) once per module: `two_processes` runs every scenario in the same pair (one
start-up of the interpreter and torch) and the tests read what it wrote. The single-process
references run in the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from suite import distributed
from suite.attacks.jobs import run_attack
from suite.attacks.settings import AttackConfig
from suite.checkpoint import load_checkpoint, load_model
from suite.data import DataSpec
from suite.device import select_device
from suite.errors import SuiteError
from suite.models import ModelSpec
from suite.results.attacks import read_store
from suite.train import Optimisation, TrainConfig, train
from suite.train.loop import seed_epoch, train_loader
from suite.where import Where
from tests.support.helpers import (assert_tensorboard_holds_the_run, free_port, interrupt_after_first_epoch,
                                   make_checkpoint, run_processes)

SPEC = DataSpec("digits", size=8)
TRAIN = Optimisation(epochs=2, batch_size=128, lr=0.05, seed=3)
# a tiny SNN (ResNet-20 at width 0.25, T=2) on 8x8 digits, trained as TRAIN says
CONFIG = TrainConfig(data=SPEC, model=ModelSpec(arch="resnet20", kind="snn", width=0.25, timesteps=2), optim=TRAIN)
ATTACK = AttackConfig(methods=("fgsm", "pgd"), eps=(0.0, 8 / 255), alpha=2 / 255, steps=2, samples=24,
                      batch_size=8, seed=5)  # 3 batches: rank 0 attacks two, rank 1 one
DIGITS_TRAIN = 1347  # digits at a 75/25 split: 1347 training, 450 test samples


# ----------------------------------------------------------------------------- one process

def test_shard_splits_into_contiguous_blocks_in_rank_order():
    # 10 items over 3 processes: 10 = 4 + 3 + 3, the first 10 % 3 = 1 block one longer
    blocks = [list(distributed.shard(range(10), r, 3)) for r in range(3)]
    assert blocks == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [list(distributed.shard(range(2), r, 3)) for r in range(3)] == [[0], [1], []]


def test_single_process_is_rank_0_of_1():
    assert not distributed.is_initialized()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    t = torch.tensor([2.5])
    assert distributed.all_reduce_sum(t) is t and t.item() == 2.5
    assert distributed.all_gather_objects("x") == ["x"]
    assert distributed.broadcast_from_main(lambda: 7) == 7
    assert distributed.init("cpu") is False  # not launched by torchrun: nothing to join


def test_other_torchrun_workers_are_not_main_before_init(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main()
    monkeypatch.setenv("RANK", "0")
    assert distributed.is_main()


def test_backend_is_nccl_on_cuda_and_gloo_on_cpu():
    assert distributed.backend_for("cuda:1") == "nccl"
    assert distributed.backend_for("cpu") == "gloo"


def test_each_torchrun_process_takes_its_own_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert select_device("auto") == torch.device("cuda", 1)
    assert select_device("cuda") == torch.device("cuda", 1)
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(SuiteError, match="every process of this node on one GPU"):
        select_device("cuda:0")


def test_device_auto_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    with pytest.raises(SuiteError, match="CUDA is not available"):
        select_device("cuda")


def _batches(world: int, epoch: int, n: int, cfg: Optimisation) -> list[list[list[int]]]:
    """Sample indices of each step, per rank: [rank][step] -> indices."""
    data = TensorDataset(torch.arange(n), torch.zeros(n))
    out = []
    for rank in range(world):
        loader = train_loader(data, cfg, rank, world)
        seed_epoch(loader, cfg.seed, epoch, rank)
        out.append([x.tolist() for x, _ in loader])
    return out


@pytest.mark.parametrize("world", [2, 4])
def test_global_batches_hold_the_same_samples_for_any_number_of_processes(world):
    cfg = Optimisation(batch_size=8, seed=1)
    n = 103  # 12 full global batches of 8; the last 7 samples are dropped
    for epoch in (0, 1):
        (single,) = _batches(1, epoch, n, cfg)
        split = _batches(world, epoch, n, cfg)
        assert len(single) == 12 and all(len(steps) == 12 for steps in split)
        for k in range(12):
            together = sorted(i for rank in range(world) for i in split[rank][k])
            assert together == sorted(single[k]), (epoch, k)
    first, second = (_batches(1, e, n, cfg)[0] for e in (0, 1))
    assert first != second  # each epoch is shuffled anew


def test_batch_that_does_not_split_over_the_processes_is_refused():
    data = TensorDataset(torch.arange(10), torch.zeros(10))
    with pytest.raises(SuiteError, match="--batch-size 10 is the global batch .* 4 processes"):
        train_loader(data, Optimisation(batch_size=10), 0, 4)


# ----------------------------------------------------------------------------- two processes

def _scenario(rank: int, folder: Path) -> None:
    """What each of the two processes runs; every file a rank writes is named for it, so the
    tests can see that rank 1 wrote nothing. `train` comes first: it joins the process group."""
    common = dict(show_progress=False, data_root=folder / "datasets")
    train(CONFIG, folder / f"full-rank{rank}.pt", tensorboard=folder / f"tb-rank{rank}", **common)
    report = {"augmentation_seed": torch.initial_seed(),  # what the last epoch seeded
              "rank": distributed.rank(), "world": distributed.world_size(),
              "sum": distributed.all_reduce_sum(torch.tensor([rank + 1.0])).item(),
              "gathered": distributed.all_gather_objects(f"r{rank}"),
              "broadcast": distributed.broadcast_from_main(lambda: f"from rank {distributed.rank()}")}

    def bad_input():
        raise SuiteError("seen by rank 0")
    try:
        distributed.broadcast_from_main(bad_input)
    except SuiteError as exc:
        report["error"] = str(exc)

    try:
        train(CONFIG, folder / "cut.pt", on_epoch_end=interrupt_after_first_epoch, **common)
    except KeyboardInterrupt:
        report["interrupted_at"] = load_checkpoint(folder / "cut.pt").epoch
    train(CONFIG, folder / "cut.pt", resume=True, **common)

    where = Where(folder / "attacks", device="cpu", data_root=folder / "datasets", show_progress=False)
    run = run_attack(folder / "tiny.pt", ATTACK, where, check=True, name=f"store-rank{rank}")
    report["checks"] = [c.passed for c in run.checks]
    (folder / f"report-rank{rank}.json").write_text(json.dumps(report))
    distributed.shutdown()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    make_checkpoint(folder / "tiny.pt")
    run_processes(_scenario, folder, world=2)
    return folder


def test_collectives_over_two_processes(two_processes):
    reports = [json.loads((two_processes / f"report-rank{r}.json").read_text()) for r in range(2)]
    for rank, report in enumerate(reports):
        assert (report["rank"], report["world"]) == (rank, 2)
        assert report["sum"] == 3.0  # 1 + 2
        assert report["gathered"] == ["r0", "r1"]
        assert report["broadcast"] == "from rank 0"
        assert report["error"] == "seen by rank 0"  # raised on both, not only where it happened


def test_each_process_draws_its_own_augmentation(two_processes):
    """torch's generator is last seeded by the last epoch's `seed_epoch`: with each process's own
    rank, so rank 1 does not repeat rank 0's random crops and flips."""
    reports = [json.loads((two_processes / f"report-rank{r}.json").read_text()) for r in range(2)]
    data = TensorDataset(torch.arange(8), torch.zeros(8))
    for rank, report in enumerate(reports):
        seed_epoch(train_loader(data, Optimisation(batch_size=4), rank, 2), TRAIN.seed, TRAIN.epochs - 1, rank)
        assert report["augmentation_seed"] == torch.initial_seed()
    assert reports[0]["augmentation_seed"] != reports[1]["augmentation_seed"]


def test_two_processes_write_one_checkpoint_that_loads(two_processes):
    assert not (two_processes / "full-rank1.pt").exists()
    model, ckpt = load_model(two_processes / "full-rank0.pt")
    assert ckpt.epoch == 2 and ckpt.model_config == CONFIG.model_config and ckpt.train_config == TRAIN.to_dict()
    assert model(torch.rand(3, 1, 8, 8)).shape == (2, 3, 10)
    for row in ckpt.metrics:
        assert row["processes"] == 2
        # both processes' samples are counted: 10 global batches of 128 (1347 // 128 = 10)
        assert row["samples"] == (DIGITS_TRAIN // 128) * 128
        assert 0.0 <= row["test_acc"] <= 1.0


def test_two_process_resume_gives_the_same_weights(two_processes):
    assert json.loads((two_processes / "report-rank0.json").read_text())["interrupted_at"] == 1
    full = load_checkpoint(two_processes / "full-rank0.pt")
    resumed = load_checkpoint(two_processes / "cut.pt")
    assert resumed.epoch == 2 and resumed.metrics == full.metrics
    for key, value in full.state["model"].items():
        assert torch.equal(value, resumed.state["model"][key]), key
    for a, b in zip(full.state["optimizer"]["state"].values(), resumed.state["optimizer"]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])


def test_tensorboard_is_written_by_rank_0_only(two_processes):
    assert not (two_processes / "tb-rank1").exists()
    assert_tensorboard_holds_the_run(two_processes / "tb-rank0", two_processes / "full-rank0.pt")


def test_sharded_attack_store_equals_single_process(two_processes, tmp_path):
    assert not (two_processes / "attacks" / "store-rank1.h5").exists()
    shared = read_store(two_processes / "attacks" / "store-rank0.h5")
    single_run = run_attack(two_processes / "tiny.pt", ATTACK,
                            Where(tmp_path, device="cpu", data_root=two_processes / "datasets", show_progress=False),
                            check=True, name="single")
    single = read_store(single_run.path)
    assert shared.config.pop("processes") == 2 and single.config.pop("processes") == 1
    assert shared.config == single.config  # includes the checks, the large-eps one sharded too
    for field in ("indices", "labels", "clean_pred", "clean"):
        assert torch.equal(getattr(shared, field), getattr(single, field)), field
    assert [(e.method, e.eps) for e in shared.entries] == [(e.method, e.eps) for e in single.entries]
    for a, b in zip(shared.entries, single.entries):
        assert torch.equal(a.adv, b.adv) and torch.equal(a.pred, b.pred) and torch.equal(a.linf, b.linf), a.label
        assert a.robust_acc == b.robust_acc
    assert not torch.equal(shared.entries[-1].adv, shared.clean)  # the attack did move the inputs


# ----------------------------------------------------------------------------- torchrun itself

@pytest.mark.slow
def test_torchrun_train_command(tmp_path):
    """The real launcher and command line: `torchrun --nproc_per_node 2 -m suite train`."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "suite", "train", "--dataset", "digits", "--size", "8",
           "--timesteps", "2", "--width", "0.25", "--epochs", "1", "--batch-size", "128", "--device", "cpu",
           "--out", str(tmp_path / "runs"), "--name", "ddp", "--data-root", str(tmp_path / "datasets")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("checkpoint:") == 1  # rank 0 prints the result, rank 1 nothing
    ckpt = load_checkpoint(tmp_path / "runs" / "ddp.pt")
    assert ckpt.metrics[0]["processes"] == 2 and ckpt.epoch == 1
