"""The event threat model (issue 30): adversarial examples are recordings. Every attack's stored
recordings are valid event streams within their budget whose re-binned frames are the stored
frames bit for bit; hand-built models with a known answer; the greedy reduction's minimality;
bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from suite.attacks import AttackConfig, run_attacks
from suite.attacks.event_methods import Counts, Objective, event_sparse
from suite.attacks.event_threat import Recording, check_recording, counts_of
from suite.data.events import EVENT_DTYPE, make_events
from suite.data.frames import EventFrames, FrameConfig, events_to_frames
from suite.errors import SuiteError
from suite.results.attacks import read_store, write_store
from tests.support.helpers import assert_one_line_error, cli, make_checkpoint

METHODS = ("event-pgd", "event-sparse", "event-retime", "event-random", "event-random-retime")


# ----------------------------------------------------------------------------- binning
def test_counts_are_tonics_time_bins_including_the_dropped_tail():
    """The last event lies exactly at t_first + T w when the span divides evenly: Tonic puts it
    in no bin, and so must the attacks' counts."""
    from tonic.transforms import ToFrame

    rng = np.random.default_rng(0)
    for span in (1000, 999, 7):
        t = np.sort(rng.integers(0, span, 300))
        t[0], t[-1] = 0, span
        ev = make_events(rng.integers(0, 5, 300), rng.integers(0, 4, 300), t, rng.integers(0, 2, 300))
        np.testing.assert_array_equal(counts_of(ev, (5, 4), 4), ToFrame(sensor_size=(5, 4, 2), n_time_bins=4)(ev))


# ----------------------------------------------------------------------------- hand-built cases
class OneRecordings:
    """Identical hand-made recordings on a 4x4 sensor: events at (0,0) in every bin, t 0..400."""

    def __init__(self, n: int = 3, label: int = 0):
        self.n, self._label = n, label

    def __len__(self):
        return self.n

    def key(self, i):
        return f"r{i}"

    def label(self, i):
        return self._label

    def events(self, i):
        t = np.array([0, 50, 150, 250, 350, 400])
        return make_events(np.zeros(6, int), np.zeros(6, int), t, np.ones(6, int)), (4, 4)


class Pixel(nn.Module):
    """Class 1 once the frame value of one cell (bin b, polarity 0, y 2, x 3) passes 0.3: two
    events there (each 1/4 of a frame unit), so the minimal change is exactly 2 events."""

    def __init__(self, b: int = 1):
        super().__init__()
        self.b = b
        self.w = nn.Parameter(torch.ones(1))  # a parameter, so the model has a device

    def forward(self, x):  # [B, T, 2, 4, 4]
        v = x[:, self.b, 0, 2, 3] * self.w
        return torch.stack([torch.full_like(v, 0.3), v], dim=1)


def dataset(T: int = 4) -> EventFrames:
    return EventFrames(OneRecordings(), FrameConfig(timesteps=T, size=4), cache_dir=None)


def attack(model, method, events=(0, 1, 2, 10), **kw):
    return run_attacks(model, dataset(), AttackConfig(methods=(method,), threat="events", events=events,
                                                      samples=None, batch_size=3, steps=10, **kw))


@pytest.mark.parametrize("method", ["event-pgd", "event-sparse"])
def test_the_minimal_change_to_a_one_pixel_decision_is_found_exactly(method):
    store = attack(Pixel(), method)
    assert [e.robust_acc for e in store.for_method(method)] == [1.0, 1.0, 0.0, 0.0]  # a budget of 1 cannot flip it
    at10 = store.entry(method, 10)
    assert at10.linf.tolist() == [2.0, 2.0, 2.0]  # exactly the two events the flip needs
    for rec in store.recordings(method, 10):
        added = rec[(rec["x"] == 3) & (rec["y"] == 2) & (rec["p"] == 0)]
        assert len(added) == 2 and all(100 <= t < 200 for t in added["t"])  # in bin 1 (w = 100)


class Saturating(nn.Module):
    """Class 1 reads the cell of `Pixel` through a clamp at 0.2, below the 0.3 it would need: one
    event (0.25) there and the gradient is zero everywhere, with the label still standing."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        v = x[:, 1, 0, 2, 3].clamp(max=0.2) * self.w
        return torch.stack([torch.full_like(v, 0.3), v], dim=1)


def test_the_greedy_attack_stops_when_the_gradient_points_nowhere_new():
    """After its first change the gradient vanishes while the sample stays correct: the growth
    must stop (it once repeated the same empty iteration for ever), and the sample stays robust."""
    import signal

    def hung(*_):
        raise TimeoutError("event-sparse did not stop")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)  # the attack takes well under a second
    try:
        store = attack(Saturating(), "event-sparse", events=(0, 10))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [e.robust_acc for e in store.for_method("event-sparse")] == [1.0, 1.0]
    assert store.entry("event-sparse", 10).linf.tolist() == [1.0, 1.0, 1.0]  # the one change made, not reduced


class Bin(nn.Module):
    """Class 1 once bin `b` holds 3 events at (0, 0), polarity 1 (a frame value above 0.6)."""

    def __init__(self, b: int):
        super().__init__()
        self.b = b
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        v = x[:, self.b, 1, 0, 0] * self.w
        return torch.stack([torch.full_like(v, 0.6), v], dim=1)


def test_retiming_moves_events_into_the_bin_a_model_reads_within_its_largest_shift():
    """Clean counts at (0, 0), polarity 1, per bin: [2, 1, 1, 1] (t 0 and 50; 150; 250; 350; t 400
    falls in no bin; the events at 0 and 400 are the recording's ends and stay)."""
    near = attack(Bin(2), "event-retime", events=(0, 1, 2), max_shift=1)
    assert [e.robust_acc for e in near.for_method("event-retime")] == [1.0, 1.0, 0.0]  # two moves: bins 1 and 3
    for rec in near.recordings("event-retime", 2):
        np.testing.assert_array_equal(counts_of(rec, (4, 4), 4)[:, 1, 0, 0], [2, 0, 3, 0])
    # bin 3 can gain only bin 2's event within one bin, so it stays below 3; within two, bin 1's too
    assert attack(Bin(3), "event-retime", events=(0, 2, 10), max_shift=1).entry("event-retime", 10).robust_acc == 1.0
    far = attack(Bin(3), "event-retime", events=(0, 2), max_shift=2)
    assert far.entry("event-retime", 2).robust_acc == 0.0
    for rec in far.recordings("event-retime", 2):
        np.testing.assert_array_equal(counts_of(rec, (4, 4), 4)[:, 1, 0, 0], [2, 0, 0, 3])


# ----------------------------------------------------------------------------- every attack on a real model
@pytest.fixture(scope="module")
def dvs_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dvs")
    ckpt = make_checkpoint(folder / "dvs.pt", "snn", dataset="digits-dvs", size=8, timesteps=2)
    code, out = cli(__import__("typer.testing", fromlist=["CliRunner"]).CliRunner(), "attack", "--model", ckpt,
                    "--threat", "events", "--method", ",".join(METHODS), "--events", "0,5,20", "--samples", 8,
                    "--batch-size", 4, "--steps", 3, "--out", folder)
    assert code == 0, out
    return read_store(next(folder.glob("*.h5"))), out


def test_every_stored_recording_is_valid_within_budget_and_rebins_to_its_frames(dvs_store):
    from suite.checkpoint import load_model
    from suite.models import mean_logits

    store, _ = dvs_store
    model, read = load_model(store.config["checkpoint"])
    data = store.config["data"]
    config = FrameConfig.of(data["timesteps"], data["size"], data["frames"])
    assert store.methods == [*METHODS, "worst"]
    for e in store.entries:
        recs = store.recordings(e.method, e.eps)
        assert all(r.dtype == EVENT_DTYPE for r in recs) and len(recs) == store.n_samples
        frames = torch.stack([torch.from_numpy(events_to_frames(r, tuple(s), config))
                              for r, s in zip(recs, store.sensors.tolist())])
        assert torch.equal(frames, e.adv), e.label  # the round-trip rule, bit for bit
        with torch.no_grad():
            assert torch.equal(mean_logits(model(frames), model).argmax(1), e.pred), e.label
        for rec, clean, sensor, change in zip(recs, store.clean_events, store.sensors.tolist(), e.changes):
            r = Recording(clean, tuple(sensor), config)
            check_recording(rec, r, counts_of(rec, tuple(sensor), config.timesteps), e.eps, change.changed)
            assert change.changed <= e.eps
            if e.eps == 0:
                np.testing.assert_array_equal(rec, clean)  # a budget of 0 is the clean recording
            if e.method in ("event-retime", "event-random-retime"):
                assert len(rec) == len(clean) and change.moved == len(change.added) == len(change.removed)
    added = store.entry("event-random", 20).changes
    assert sum(len(c.added) for c in added) > 0 and sum(len(c.removed) for c in added) > 0


def test_a_written_store_reads_back_its_recordings(tmp_path, dvs_store):
    store, _ = dvs_store
    path = write_store(tmp_path / "copy.h5", store)
    again = read_store(path)
    for a, b in zip(store.recordings("event-sparse", 20), again.recordings("event-sparse", 20)):
        np.testing.assert_array_equal(a, b)


def test_a_store_records_events_added_and_removed_and_their_share_of_each_recording(tmp_path, dvs_store):
    """n_added, n_removed and fraction, checked against the recordings themselves: the multiset
    difference of adversarial and clean events (a bug counting moves twice, or dividing by the
    adversarial recording's length, fails it)."""
    import h5py
    from collections import Counter

    store, _ = dvs_store
    path = write_store(tmp_path / "counts.h5", store)
    with h5py.File(path, "r") as f:
        for k in f["attacks"]:
            g = f["attacks"][k]
            method, budget = str(g.attrs["method"]), float(g.attrs["eps"])
            recs, changes = store.recordings(method, budget), store.entry(method, budget).changes
            for i, (rec, clean) in enumerate(zip(recs, store.clean_events)):
                retime = changes[i].moved > 0  # the worst case mixes retiming and other attacks
                adv_set, clean_set = Counter(map(tuple, rec.tolist())), Counter(map(tuple, clean.tolist()))
                added, removed = sum((adv_set - clean_set).values()), sum((clean_set - adv_set).values())
                assert (g["n_added"][i], g["n_removed"][i]) == (added, removed), (method, budget, i)
                changed = added if retime else added + removed  # a move removes one event and adds it back
                assert g["fraction"][i] == pytest.approx(changed / len(clean), rel=1e-6)  # float32
            assert g.attrs["fraction_mean"] == pytest.approx(float(np.mean(g["fraction"][()])), rel=1e-6)
    row = next(r for r in store.summary() if r["method"] == "event-random" and r["eps"] == 20)
    assert row["fraction_mean"] > 0


def test_the_greedy_reduction_leaves_no_change_the_flip_does_not_need(tmp_path):
    """A random linear model of the frames (many cells matter, changes interact), each sample
    labelled as the model sees it clean: every change event-sparse keeps is needed, checked by
    removing each one and seeing the label come back."""
    from suite.attacks.event_methods import _apply
    from suite.data import DataSpec, load_dataset

    data = load_dataset(DataSpec("digits-dvs", size=8, timesteps=2), tmp_path, "test")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 2 * 8 * 8, 10))
    recs = [Recording(*data.source.events(i), data.config) for i in range(12)]
    counts = Counts.of(recs, "cpu")
    with torch.no_grad():
        y = model(counts_frames(counts)).argmax(1)
    obj = Objective(model, data.config, y)
    kept = event_sparse(obj, counts, 60)
    fooled = obj.fooled(_apply(counts.clean, kept, "cells"))
    assert int(fooled.sum()) >= 6
    checked = 0
    for i in torch.nonzero(fooled).flatten().tolist():
        one = Objective(model, data.config, y[i:i + 1])
        for j in range(len(kept[i])):
            assert not bool(one.fooled(_apply(counts.clean[i:i + 1], [kept[i][:j] + kept[i][j + 1:]], "cells"))[0])
            checked += 1
    assert checked >= 6


def counts_frames(counts: Counts) -> torch.Tensor:
    from suite.data.frames import counts_to_frames

    return counts_to_frames(counts.clean, counts.config)


def test_the_checks_say_every_attack_beats_its_random_floor(dvs_store):
    store, out = dvs_store
    names = {c["name"]: c for c in store.config["checks"]}
    assert {"beats_random[event-pgd]", "beats_random[event-sparse]", "beats_random[event-retime]"} <= set(names)
    assert "monotone[event-random]" not in names  # a floor's draws are chance, not a search
    words = " ".join(out.split())
    assert "budgets in events per sample" in words and "20 events" in words


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args, needle", [
    (["--threat", "events"], "--threat events needs event data read from its recordings"),
    (["--threat", "events", "--events", "-1"], "--events must be a whole number from 0 to"),
    (["--threat", "events", "--events", "2.5"], "--events '2.5' is not a whole number"),
    (["--events", "10"], "--events gives budgets of --threat events"),
    (["--threat", "events", "--eps", "8/255"], "--eps is an L-inf budget of --threat frames"),
    (["--threat", "events", "--method", "pgd"], "pgd is an attack on frames (--threat frames)"),
    (["--method", "event-pgd"], "event-pgd is an attack of --threat events"),
    (["--threat", "events", "--method", "event-pgd", "--max-shift", "1"], "--max-shift applies to event-retime"),
    (["--threat", "spikes"], "unknown --threat 'spikes'"),
])
def test_bad_event_options_are_one_error_line(runner, tmp_path, args, needle):
    model = make_checkpoint(tmp_path / "m.pt", "snn")  # a static model
    code, out = cli(runner, "attack", "--model", model, *args, "--samples", 4, "--out", tmp_path / "attacks")
    assert_one_line_error(code, out, needle)
    written = list((tmp_path / "attacks").rglob("*")) if (tmp_path / "attacks").exists() else []
    assert not written, f"nothing is written, not even a partial run's folder: {written}"


def test_frames_binned_by_event_count_are_refused_for_event_attacks(tmp_path):
    """By the recording, and by the attack before it writes anything (not even a partial run)."""
    from suite.attacks.resume import Partial

    by_count = FrameConfig.of(4, 4, "count-clip")
    with pytest.raises(SuiteError, match="the event threat model needs time-binned frames"):
        Recording(OneRecordings().events(0)[0], (4, 4), by_count)
    data = EventFrames(OneRecordings(), by_count, cache_dir=None)
    with pytest.raises(SuiteError, match="the event threat model needs time-binned frames"):
        run_attacks(Pixel(), data, AttackConfig(methods=("event-pgd",), threat="events", events=(0, 2), samples=None,
                                                batch_size=3), partial=Partial(tmp_path / "s.partial", False))
    assert not list(tmp_path.iterdir())
