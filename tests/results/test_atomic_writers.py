"""Every writer is atomic: an exception in the middle of a write leaves the old file intact
(byte for byte) and no temporary file behind. Each test writes a file, then writes it again
with the underlying serializer (torch.save, an HDF5 dataset, savefig, a text write, np.save)
made to fail after part of the new content is already on disk.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import numpy as np
import pytest
import torch

import suite.results.attacks as attack_results
import suite.results.cka as cka_results
from suite.data.frames import EventFrames, FrameConfig, frame_cache_dir
from suite.report.figures import cka_figure, save_figure
from suite.report.page import write_page
from suite.results.attacks import write_store
from suite.results.experiment import PROVENANCE_KEYS, Experiment, write_experiment
from tests.results.test_files import OneSample, tiny_cka, tiny_store
from tests.support.helpers import make_checkpoint


class Crash(RuntimeError):
    """The failure injected in the middle of a write."""


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (temporaries included), name -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_untouched(folder: Path, before: dict[str, bytes]) -> None:
    after = snapshot(folder)
    assert sorted(after) == sorted(before), "a temporary or partial file was left behind"
    for name, data in before.items():
        assert after[name] == data, f"{name} changed although its write failed"


def test_checkpoint_write_that_fails_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = make_checkpoint(tmp_path / "m.pt", size=8)
    before = snapshot(tmp_path)
    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)  # the whole new payload is on disk ...
        with open(f, "r+b") as handle:
            handle.truncate(100)  # ... then cut short, as a crash would leave it
        raise Crash("disk full")

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(Crash):
        make_checkpoint(path, size=8, seed=1)
    assert_untouched(tmp_path, before)


def test_attack_store_write_that_fails_keeps_the_old_store(tmp_path, monkeypatch):
    path = write_store(tmp_path / "adv.h5", tiny_store(), command="first")
    before = snapshot(tmp_path)
    calls = []
    real = attack_results._f32

    def fail_second(t):  # the first array (clean inputs) is written, the second fails
        calls.append(1)
        if len(calls) == 2:
            raise Crash("interrupted")
        return real(t)

    monkeypatch.setattr(attack_results, "_f32", fail_second)
    with pytest.raises(Crash):
        write_store(path, tiny_store(), command="second")
    assert len(calls) == 2
    assert_untouched(tmp_path, before)


def test_cka_result_write_that_fails_keeps_the_old_result(tmp_path, monkeypatch):
    path = tiny_cka().save(tmp_path / "cka.h5", command="first")
    before = snapshot(tmp_path)

    def fail(*args, **kwargs):  # after the matrices, before the layer names
        raise Crash("interrupted")

    monkeypatch.setattr(cka_results, "write_strings", fail)
    with pytest.raises(Crash):
        tiny_cka().save(path, command="second")
    assert_untouched(tmp_path, before)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_figure_write_that_fails_keeps_the_old_figure(tmp_path, monkeypatch, fmt):
    (path,) = save_figure(cka_figure(tiny_cka()), tmp_path / f"cka.{fmt}")
    before = snapshot(tmp_path)
    real = matplotlib.figure.Figure.savefig

    def half_savefig(self, fname, *args, **kwargs):
        real(self, fname, *args, **kwargs)
        with open(fname, "r+b") as handle:
            handle.truncate(50)
        raise Crash("interrupted")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_savefig)
    with pytest.raises(Crash):
        save_figure(cka_figure(tiny_cka(), title="again"), path)
    assert_untouched(tmp_path, before)


def _half_write_text(monkeypatch):
    """Make Path.write_text write the first half of its text, then fail."""
    real = Path.write_text

    def half_write(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise Crash("interrupted")

    monkeypatch.setattr(Path, "write_text", half_write)


def test_page_write_that_fails_keeps_the_old_page(tmp_path, monkeypatch):
    path = write_page(tmp_path / "report.html", [], [], title="first")
    before = snapshot(tmp_path)
    _half_write_text(monkeypatch)
    with pytest.raises(Crash):
        write_page(path, [], [], title="second")
    monkeypatch.undo()
    assert_untouched(tmp_path, before)


def test_experiment_file_write_that_fails_keeps_the_old_file(tmp_path, monkeypatch):
    experiment = Experiment(recipe="tiny", config={"a": 1}, findings=[], files={},
                            provenance={k: "x" for k in PROVENANCE_KEYS})
    path = write_experiment(tmp_path, experiment)
    before = snapshot(tmp_path)
    _half_write_text(monkeypatch)
    experiment.config = {"a": 2}
    with pytest.raises(Crash):
        write_experiment(tmp_path, experiment)
    monkeypatch.undo()
    assert_untouched(tmp_path, before)
    assert path.is_file()


def test_frame_cache_write_that_fails_leaves_no_file(tmp_path, monkeypatch):
    """A cache file is new (there is no old one): a failed write leaves nothing, so the next
    read computes the frames again instead of loading half a file."""
    config = FrameConfig(timesteps=2, size=4)
    folder = frame_cache_dir(tmp_path, "tiny", config, {})
    before = snapshot(tmp_path)
    real = np.save

    def half_save(f, arr, *args, **kwargs):
        real(f, arr[:1], *args, **kwargs)
        raise Crash("interrupted")

    monkeypatch.setattr(np, "save", half_save)
    with pytest.raises(Crash):
        EventFrames(OneSample(), config, folder).frames(0)
    assert_untouched(tmp_path, before)
