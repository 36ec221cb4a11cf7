"""train()'s bookkeeping against what it did, in one process: the samples each epoch draws
(the documented seed rule, recomputed with torch.randperm), each epoch's row (loss and
accuracy sums over the steps it took, samples, learning-rate schedule, test accuracy by a
hand loop), the TensorBoard scalars, the progress bar's count and text, the float16
gradient scaler across a resume, and the refusals.

The data are two small recording datasets in place of digits (40 training samples, batches
of 16: two full batches an epoch, 8 samples dropped; 24 test samples), so every number here
is worked out from what the test saw.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import suite.train.loop as train_module
from suite import distributed
from suite.checkpoint import load_checkpoint, load_model
from suite.data import DataSpec
from suite.errors import SuiteError
from suite.models import ModelSpec
from suite.train import Optimisation, TrainConfig, train
from suite.train.loop import evaluation_loader, seed_epoch, to_device, train_loader
from tests.support.helpers import RecordedBar, assert_tensorboard_holds_the_run, interrupt_after_first_epoch

SPEC = DataSpec("digits", size=8)
N_TRAIN, N_TEST, BATCH = 40, 24, 16
STEPS = N_TRAIN // BATCH  # full batches per epoch: the last partial batch is dropped
# The documented seeding (suite/train/loop.py): epoch e of seed s shuffles with s * 100003 + e; the
# process's own RNG is seeded one further, plus 1000003 per rank. Written out, not imported.
EPOCH_STRIDE, RANK_STRIDE = 100_003, 1_000_003


class Recording(Dataset):
    """Samples (x, y); records each index drawn (loaders run in this process: workers=0)."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x, self.y = torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)
        self.drawn: list[int] = []

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        self.drawn.append(int(i))
        return self.x[i], self.y[i]


@pytest.fixture
def data(monkeypatch):
    """The two splits in place of load_dataset; `calls` records (root, split, augment)."""
    sets = {"train": Recording(N_TRAIN, 0), "test": Recording(N_TEST, 1)}
    calls = []

    def load(spec, root, split="train", augment=False):
        calls.append((Path(root), split, augment))
        return sets[split]
    monkeypatch.setattr(train_module, "load_dataset", load)
    return sets, calls


@pytest.fixture
def forwards(monkeypatch):
    """The output of every forward pass of the model train() builds: (training?, logits)."""
    seen = []
    real = train_module.build_model

    def build(cfg):
        model = real(cfg)
        model.register_forward_hook(lambda m, args, out: seen.append((m.training, out.detach())))
        return model
    monkeypatch.setattr(train_module, "build_model", build)
    return seen


@pytest.fixture
def steps(monkeypatch, forwards):
    """Each train_step's loss and correct count, with the count worked out by hand from the
    step's own logits (time-averaged, arg-max), batch size, autocast dtype, scaler and
    deterministic mode."""
    seen = []
    real = train_module.train_step

    def spy(net, model, opt, x, y, tet, autocast_dtype=None, scaler=None):
        loss, correct = real(net, model, opt, x, y, tet, autocast_dtype, scaler)
        training, logits = forwards[-1]
        by_hand = int((logits.float().mean(0).argmax(1) == y).sum())  # [T, B, C] -> [B]
        seen.append(dict(loss=float(loss), correct=int(correct), by_hand=by_hand, n=len(y), training=training,
                         dtype=autocast_dtype, scaler=scaler, deterministic=torch.are_deterministic_algorithms_enabled()))
        return loss, correct
    monkeypatch.setattr(train_module, "train_step", spy)
    return seen


TINY = ModelSpec(arch="resnet20", kind="snn", width=0.25, timesteps=2, threshold=0.25)


def optim(**kw) -> Optimisation:
    return Optimisation(**{**dict(epochs=2, batch_size=BATCH, lr=0.05, momentum=0.8, weight_decay=1e-3,
                                  seed=7), **kw})


def config(model: ModelSpec = TINY, **kw) -> TrainConfig:
    """The tiny SNN on SPEC, trained with `optim(**kw)`."""
    return TrainConfig(data=SPEC, model=model, optim=optim(**kw))


def no_ddp(monkeypatch) -> None:
    """Let `_Run.build` run as one of several processes without a process group: its
    DistributedDataParallel wrapper (of `net`; `model` is what is checked) becomes the model."""
    monkeypatch.setattr(train_module, "DistributedDataParallel", lambda model, device_ids=None: model)


def shuffled(seed: int, epoch: int, n: int = N_TRAIN) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * EPOCH_STRIDE + epoch)).tolist()


def test_each_epoch_draws_the_documented_order_and_its_row_sums_its_steps(tmp_path, data, steps):
    sets, calls = data
    rows = []
    result = train(config(), tmp_path / "m.pt", show_progress=False,
                   on_epoch_end=lambda epoch, row: rows.append((epoch, row)))

    # the default data folder; the training split augmented, the test split not
    assert calls == [(Path("datasets"), "train", True), (Path("datasets"), "test", False)]
    # epoch e visits the first STEPS * BATCH samples of randperm seeded 7 * 100003 + e
    assert sets["train"].drawn == shuffled(7, 0)[:STEPS * BATCH] + shuffled(7, 1)[:STEPS * BATCH]
    assert sets["test"].drawn == list(range(N_TEST)) * 2  # every test sample once an epoch
    assert len(steps) == 2 * STEPS
    assert all(s["training"] and s["correct"] == s["by_hand"] for s in steps)

    metrics = load_checkpoint(tmp_path / "m.pt").metrics
    assert result.metrics == metrics and [epoch for epoch, _ in rows] == [1, 2]
    for e, (row, (_, passed)) in enumerate(zip(metrics, rows)):
        assert passed == row  # on_epoch_end sees the row that is stored
        mine = steps[e * STEPS:(e + 1) * STEPS]
        seen = sum(s["n"] for s in mine)
        assert row["epoch"] == e + 1 and row["samples"] == seen == STEPS * BATCH and row["processes"] == 1
        # 2 steps of 16 samples: loss * 16 is exact in float32, and both sides add the same two float64
        # numbers, so at most the final division rounds (u); another batch size would make the library's
        # float32 product round (6e-8 relative) and this tolerance would have to follow
        assert row["train_loss"] == pytest.approx(sum(s["loss"] * s["n"] for s in mine) / seen, rel=1e-12)
        assert row["train_acc"] == pytest.approx(sum(s["correct"] for s in mine) / seen, rel=1e-12)
        # cosine schedule over 2 epochs, after e + 1 of them: 0.05 (1 + cos(pi (e + 1) / 2)) / 2
        # a few float64 roundings of values <= 0.05 on either side (torch's recursive form or this one): < 1e-16
        assert row["lr"] == pytest.approx(0.05 * (1 + math.cos(math.pi * (e + 1) / 2)) / 2, abs=1e-12)
    assert 0 < result.seconds

    # the last row's test accuracy by hand, from the saved weights
    model, ckpt = load_model(tmp_path / "m.pt")
    test = sets["test"]
    with torch.no_grad():
        pred = model.eval()(test.x).mean(0).argmax(1)  # [T, B, C] -> time-averaged logits
    # a count over 24 divided once on both sides: the same correctly rounded quotient
    assert metrics[-1]["test_acc"] == pytest.approx((pred == test.y).double().mean().item(), abs=1e-12)
    # SGD with the run's momentum and weight decay, a momentum buffer per parameter
    group = ckpt.state["optimizer"]["param_groups"][0]
    assert (group["momentum"], group["weight_decay"]) == (0.8, 1e-3)
    assert len(ckpt.state["optimizer"]["state"]) == len(list(model.parameters()))
    assert ckpt.provenance["device"] == "cpu"


def test_seconds_is_the_time_the_run_took(tmp_path, data):
    before = time.perf_counter()
    result = train(config(epochs=1), tmp_path / "m.pt", show_progress=False)
    assert 0 < result.seconds <= time.perf_counter() - before


def test_seed_epoch_seeds_order_and_own_rng_by_the_documented_rule():
    data = TensorDataset(torch.arange(10), torch.zeros(10))
    for rank in (0, 1):
        loader = train_loader(data, Optimisation(batch_size=2, seed=5), rank, 2)
        seed_epoch(loader, 5, 3, rank) if rank else seed_epoch(loader, 5, 3)  # rank 0 is the default
        own = 5 * EPOCH_STRIDE + 3 + 1 + rank * RANK_STRIDE
        assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(own)))
        assert loader.generator.initial_seed() == own
        assert list(loader.sampler) == shuffled(5, 3, 10)[rank::2]  # the sampler's epoch is 3


def test_loaders_take_workers_pinning_and_the_evaluation_batch():
    data = TensorDataset(torch.arange(10), torch.zeros(10))
    loader = train_loader(data, Optimisation(batch_size=4, workers=2), 0, 1, pin_memory=True)
    assert (loader.num_workers, loader.pin_memory, loader.batch_size) == (2, True, 4)
    assert not train_loader(data, Optimisation(batch_size=4), 0, 1).pin_memory  # pinning is for CUDA
    # evaluation keeps no activations: batches of at least 256 samples whatever the training batch
    assert evaluation_loader(data, Optimisation(batch_size=4)).batch_size == 256
    assert evaluation_loader(data, Optimisation(batch_size=300)).batch_size == 300
    loader = evaluation_loader(data, Optimisation(batch_size=4, workers=2), pin_memory=True)
    assert (loader.num_workers, loader.pin_memory) == (2, True)
    assert not evaluation_loader(data, Optimisation(batch_size=4)).pin_memory


def test_both_loaders_of_a_run_pin_memory_when_asked(data):
    for pin in (True, False):
        loaders = train_module._loaders(config(batch_size=4), "datasets", 0, 1, pin_memory=pin)
        assert [loader.pin_memory for loader in loaders] == [pin, pin]


def running_texts(steps: list[dict], where: str, every: int = 10) -> list[str]:
    """What the bar shows every `every` steps: the epoch's loss and accuracy so far."""
    out = []
    for k in range(0, len(steps), every):
        done = steps[:k + 1]
        n = sum(s["n"] for s in done)
        out.append(f"{where} loss {sum(s['loss'] * s['n'] for s in done) / n:.3f} "
                   f"acc {sum(s['correct'] for s in done) / n:.3f}")
    return out


def test_progress_bar_counts_steps_and_shows_the_numbers_measured(tmp_path, data, steps, monkeypatch):
    """Batches of 2: 20 steps an epoch, so the running text appears at steps 0 and 10."""
    RecordedBar.made.clear()
    monkeypatch.setattr(train_module, "progress_bar", RecordedBar)
    rows = train(config(batch_size=2), tmp_path / "m.pt").metrics  # show_progress defaults to on
    (bar,) = RecordedBar.made
    (task,) = bar.tasks
    per_epoch = N_TRAIN // 2
    assert not bar.disable and task.description == "train" and bar.first_fields == [{"info": ""}]
    assert task.total == task.completed == 2 * per_epoch  # one advance per step, over both epochs
    assert bar.texts == (running_texts(steps[:per_epoch], "epoch 1/2") + [f"epoch 1/2 test acc {rows[0]['test_acc']:.3f}"]
                         + running_texts(steps[per_epoch:], "epoch 2/2") + [f"epoch 2/2 test acc {rows[1]['test_acc']:.3f}"])

    # a resumed run counts only the steps left
    with pytest.raises(KeyboardInterrupt):
        train(config(epochs=3), tmp_path / "r.pt", show_progress=False,
              on_epoch_end=interrupt_after_first_epoch)
    RecordedBar.made.clear()
    train(config(epochs=3), tmp_path / "r.pt", resume=True)
    assert RecordedBar.made[0].tasks[0].total == 2 * STEPS  # epochs 2 and 3 of 3

    RecordedBar.made.clear()
    train(config(epochs=1), tmp_path / "quiet.pt", show_progress=False)
    assert RecordedBar.made[0].disable


def test_epoch_totals_are_float64_and_the_running_text_comes_every_nth_step(monkeypatch):
    """A run's epoch (`_Run.epoch`) with a stand-in step whose losses alternate 1e8 and 1:
    float32 sums would lose the 1s (1e8 + 1 == 1e8 in float32); the mean is exact in float64."""
    losses = [1e8 if k % 2 == 0 else 1.0 for k in range(12)]
    taken = iter(losses)
    monkeypatch.setattr(train_module, "train_step",
                        lambda *args: (torch.tensor(next(taken), dtype=torch.float32), torch.tensor(1)))
    loader = [(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))] * 12
    texts = []
    net = torch.nn.Linear(1, 1)
    run = train_module._Run(config=config(), checkpoint=Path("unused.pt"), device=torch.device("cpu"), model=net,
                            net=net, opt=None, sched=None, dtype=None, scaler=None)
    loss, acc, seen = run.epoch(loader, texts.append, every=10)
    assert loss == (6 * 1e8 + 6 * 1.0) / 12 and acc == 0.25 and seen == 48
    assert [k for k, text in enumerate(texts) if text] == [0, 10]
    assert texts[10] == f"loss {(6 * 1e8 + 5) / 11:.3f} acc 0.250"  # after 11 steps


def test_deterministic_mode_is_on_for_the_steps_only(tmp_path, data, steps, deterministic_off):
    train(config(epochs=1, deterministic=True), tmp_path / "m.pt", show_progress=False)
    assert [s["deterministic"] for s in steps] == [True] * STEPS
    assert not torch.are_deterministic_algorithms_enabled()


def test_tensorboard_scalars_are_the_rows_and_the_firing_rates(tmp_path, data):
    train(config(), tmp_path / "m.pt", show_progress=False, tensorboard=tmp_path / "tb")
    assert_tensorboard_holds_the_run(tmp_path / "tb", tmp_path / "m.pt")


def test_training_without_tensorboard_does_not_need_the_package(tmp_path, data, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it now fails
    train(config(epochs=1), tmp_path / "m.pt", show_progress=False)
    with pytest.raises(SuiteError, match="--tensorboard needs the tensorboard package"):
        train(config(epochs=1), tmp_path / "n.pt", show_progress=False, tensorboard=tmp_path / "tb")


def test_a_rank_that_writes_no_log_refuses_tensorboard_without_the_package_too(tmp_path, data, monkeypatch):
    """Rank 1 of 2 writes no TensorBoard log, yet stops as rank 0 does, before the model is built:
    a rank that went on would wait for rank 0 in the first collective."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it now fails
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "is_main", lambda: False)
    monkeypatch.setattr(train_module._Run, "build", lambda *a: pytest.fail("the model was built"))
    with pytest.raises(SuiteError, match="^--tensorboard needs the tensorboard package: "):
        train(config(epochs=1), tmp_path / "m.pt", show_progress=False, tensorboard=tmp_path / "tb")


def test_float16_training_scales_the_loss_and_resumes_with_its_scaler(tmp_path, data, steps, forwards, monkeypatch):
    """GPUs without bfloat16 train in float16 with a GradScaler; here float16 autocast runs on
    the CPU. The scaler's state is saved with each checkpoint and restored on resume: the
    resumed run ends with the uninterrupted run's scaler (its growth tracker counts every
    step) and weights."""
    monkeypatch.setattr(train_module, "amp_dtype", lambda device, amp: torch.float16 if amp else None)
    full = train(config(), tmp_path / "full.pt", show_progress=False)
    assert {s["dtype"] for s in steps} == {torch.float16}
    assert {(training, logits.dtype) for training, logits in forwards} == {(True, torch.float16), (False, torch.float16)}
    assert all(isinstance(s["scaler"], torch.amp.GradScaler) for s in steps)
    with pytest.raises(KeyboardInterrupt):
        train(config(), tmp_path / "cut.pt", show_progress=False,
              on_epoch_end=interrupt_after_first_epoch)
    (tmp_path / "on-cpu.pt").write_bytes((tmp_path / "cut.pt").read_bytes())
    resumed = train(config(), tmp_path / "cut.pt", show_progress=False, resume=True)

    a, b = load_checkpoint(tmp_path / "full.pt").state, load_checkpoint(tmp_path / "cut.pt").state
    assert a["scaler"]["_growth_tracker"] == 2 * STEPS  # finite gradients at every step
    assert a["scaler"] == b["scaler"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert resumed.metrics == full.metrics
    monkeypatch.setattr(train_module, "amp_dtype", lambda device, amp: None)  # a device without float16
    train(config(epochs=1), tmp_path / "fp32.pt", show_progress=False)
    assert "scaler" not in load_checkpoint(tmp_path / "fp32.pt").state  # float32 runs have none
    # a float16 run resumed where there is no float16 continues in float32, its scaler unused
    train(config(), tmp_path / "on-cpu.pt", show_progress=False, resume=True)
    assert load_checkpoint(tmp_path / "on-cpu.pt").epoch == 2
    assert "scaler" not in load_checkpoint(tmp_path / "on-cpu.pt").state


def test_diverged_training_names_its_epoch(tmp_path, data):
    data[0]["train"].x[:] = float("nan")  # an ANN's loss is not a number from the first step
    ann = ModelSpec(arch="resnet20", kind="ann", width=0.25)
    with pytest.raises(SuiteError, match=r"^training diverged at epoch 1 \(loss is nan\); lower --lr$"):
        train(config(ann), tmp_path / "m.pt", show_progress=False)
    assert not (tmp_path / "m.pt").exists()  # no checkpoint of the diverged epoch


def test_sync_bn_is_refused_for_cpu_processes_and_converts_batchnorm_with_several(monkeypatch, tmp_path):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(SuiteError, match="^--sync-bn needs CUDA: torch's SyncBatchNorm synchronises GPU tensors only$"):
        train(config(sync_bn=True), tmp_path / "m.pt", show_progress=False)
    train_module._check_parallel(optim(sync_bn=True), torch.device("cuda"), 2, None)  # GPUs may
    cpu = torch.device("cpu")
    no_ddp(monkeypatch)
    kinds = lambda run: {type(m).__name__ for m in run.model.modules() if "BatchNorm" in type(m).__name__}
    build = lambda cfg: train_module._Run.build(cfg, tmp_path / "m.pt", cpu)
    assert kinds(build(config(sync_bn=True))) == {"SyncBatchNorm"}  # two processes
    assert kinds(build(config())) == {"BatchNorm2d"}
    monkeypatch.setattr(distributed, "world_size", lambda: 1)
    assert kinds(build(config(sync_bn=True))) == {"BatchNorm2d"}  # one process


def test_model_and_batches_go_to_the_device_asked_for(tmp_path):
    """The meta device stands in for a GPU: no data moves, but placement is visible."""
    meta = torch.device("meta")
    model = train_module._Run.build(config(), tmp_path / "m.pt", meta).model
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert to_device(torch.rand(2, 1, 8, 8), meta).device.type == "meta"
    # on the CPU, images come back in the default layout even if they arrive channels_last
    image = torch.rand(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    assert to_device(image, torch.device("cpu")).is_contiguous()


@pytest.mark.parametrize("where, message", [("folder", "is a folder"), ("under-file", "exists and is not a folder")])
def test_checkpoint_path_in_the_way_is_refused(tmp_path, where, message):
    (tmp_path / "f").write_text("x")
    path = tmp_path if where == "folder" else tmp_path / "f" / "m.pt"
    with pytest.raises(SuiteError, match=message):
        train(config(), path, show_progress=False)
