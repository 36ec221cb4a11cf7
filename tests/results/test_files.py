"""Atomic writes (suite.files): every file the suite writes gets the ordinary mode of the
user's umask (0644 under 022), like `open(path, "w")`, and appears whole or not at all."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
import torch

from suite.results.attacks import AttackEntry, AttackStore, write_store
from suite.results.cka import CKAResult
from suite.data.events import make_events
from suite.data.frames import EventFrames, FrameConfig, frame_cache_dir
from suite.errors import SuiteError
from suite.files import atomic_path
from suite.models import lif_kernel
from suite.report.figures import cka_figure, save_figure
from suite.results.h5 import write_h5
from tests.support.helpers import make_checkpoint

# umask -> mode of a new ordinary file, worked out by hand (0666 without the umask's bits)
ORDINARY = {0o022: 0o644, 0o027: 0o640, 0o077: 0o600, 0o002: 0o664}


@pytest.fixture(params=sorted(ORDINARY), ids=lambda m: f"umask{m:03o}")
def umask(request):
    """Run the test under one umask, restoring the process's own afterwards."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def no_temporaries(folder) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def tiny_store() -> AttackStore:
    adv = torch.tensor([[0.5, 0.25], [0.0, 1.0]])
    return AttackStore(indices=torch.tensor([3, 7]), labels=torch.tensor([0, 1]),
                       clean_pred=torch.tensor([0, 0]), clean=adv.clone(),
                       entries=[AttackEntry("fgsm", 0.0, adv, torch.tensor([0, 1]),
                                            torch.zeros(2), robust_acc=1.0)])


def tiny_cka() -> CKAResult:
    m = torch.tensor([[1.0, 0.25], [0.5, 0.75]], dtype=torch.float64)
    return CKAResult(matrix=m, layers_a=["a0", "a1"], layers_b=["b0", "b1"], n_samples=8,
                     hsic_ab=m, hsic_aa=torch.ones(2, dtype=torch.float64),
                     hsic_bb=torch.ones(2, dtype=torch.float64), n_batches=1)


class OneSample:
    """An EventSource of one recording, enough to fill a frame cache."""

    def __len__(self):
        return 1

    def key(self, i):
        return "s0"

    def label(self, i):
        return 0

    def events(self, i):
        return make_events([0, 1], [1, 0], [0, 10], [1, 0]), (4, 4)


def test_checkpoint_gets_the_umask_mode(tmp_path, umask):
    path = make_checkpoint(tmp_path / "m.pt", size=8)
    assert mode(path) == ORDINARY[umask]
    assert no_temporaries(tmp_path)


def test_attack_store_gets_the_umask_mode(tmp_path, umask):
    path = write_store(tmp_path / "adv.h5", tiny_store(), command="test")
    assert mode(path) == ORDINARY[umask]
    assert no_temporaries(tmp_path)


def test_cka_result_gets_the_umask_mode(tmp_path, umask):
    path = tiny_cka().save(tmp_path / "cka.h5", command="test")
    assert mode(path) == ORDINARY[umask]


def test_hdf5_result_gets_the_umask_mode(tmp_path, umask):
    path = write_h5(tmp_path / "r.h5", "test", {}, lambda f: f.create_dataset("x", data=[1]), command="t")
    assert mode(path) == ORDINARY[umask]


def test_figure_gets_the_umask_mode(tmp_path, umask):
    path, = save_figure(cka_figure(tiny_cka()), tmp_path / "cka.png")
    assert mode(path) == ORDINARY[umask]
    assert no_temporaries(tmp_path)


def test_frame_cache_files_get_the_umask_mode(tmp_path, umask):
    config = FrameConfig(timesteps=2, size=4)
    folder = frame_cache_dir(tmp_path, "tiny", config, {})
    EventFrames(OneSample(), config, folder).frames(0)
    assert mode(folder / "config.json") == ORDINARY[umask]
    assert mode(folder / "s0.npy") == ORDINARY[umask]
    assert no_temporaries(tmp_path)


def test_lif_kernel_library_gets_the_umask_mode(tmp_path, umask, monkeypatch):
    """The compiled kernel in a shared $SUITE_CACHE must be readable by those the umask allows
    (the linker adds execute bits; the read/write bits are the ordinary ones)."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("SUITE_CACHE", str(tmp_path))
    path = lif_kernel._compile(cc, lif_kernel.FLAGS)
    assert path.parent == tmp_path / "suite"
    assert mode(path) & 0o666 == ORDINARY[umask]
    assert no_temporaries(tmp_path)


def test_atomic_path_replaces_a_file_that_had_another_mode(tmp_path, umask):
    target = tmp_path / "r.txt"
    target.write_text("old")
    os.chmod(target, 0o400)
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target  # same folder: os.replace is atomic
        tmp.write_text("new")
    assert target.read_text() == "new" and mode(target) == ORDINARY[umask]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]


def test_file_that_cannot_be_created_is_one_suite_error(tmp_path):
    target = tmp_path / ("x" * 250)  # its temporary name passes the 255-byte limit (even for root)
    with pytest.raises(SuiteError, match="cannot write .*xxx: File name too long"), atomic_path(target):
        pass
    assert not target.exists()


def test_an_atomic_write_onto_a_folder_is_refused_and_keeps_the_folder(tmp_path):
    """Every writer goes through atomic_path; os.replace cannot put a file where a folder is."""
    from suite.files import atomic_path

    (tmp_path / "x.h5").mkdir()
    (tmp_path / "x.h5" / "keep").write_text("k")
    with pytest.raises(SuiteError, match=r"cannot write .*x\.h5: it is a folder$"):
        with atomic_path(tmp_path / "x.h5") as tmp:
            tmp.write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"] and (tmp_path / "x.h5" / "keep").read_text() == "k"
