"""The checkpoint loader on files that are not checkpoints: one SuiteError naming the file,
never another exception, and never code run from the file."""

from __future__ import annotations

import os
import random
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from suite.checkpoint import FORMAT, VERSION, load_model
from suite.errors import SuiteError
from tests.support.helpers import assert_one_line_error, cli, make_checkpoint


def assert_refused(path: Path) -> SuiteError:
    """load_model(path) (load, then build) raises SuiteError, nothing else, whose one-line
    message names the file."""
    with pytest.raises(SuiteError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    return info.value


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> bytes:
    """The bytes of a real (tiny, untrained) checkpoint."""
    return make_checkpoint(tmp_path_factory.mktemp("real") / "real.pt").read_bytes()


def test_five_byte_text_file_names_the_file(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"junk\n")
    assert "not a readable suite checkpoint" in str(assert_refused(path))


@pytest.mark.parametrize("command", [["attack"], ["cka", "--compare", "layers"]])
def test_cli_given_a_text_file_as_model_says_so_in_one_line(runner, tmp_path, command):
    path = tmp_path / "x.pt"
    path.write_bytes(b"junk\n")
    code, out = cli(runner, *command, "--model", path, "--out", tmp_path / "out")
    assert_one_line_error(code, out, "x.pt", "not a readable suite checkpoint")


def test_short_files_every_length_up_to_eight(tmp_path):
    """Every prefix of a few byte patterns that start like pickles, zips or text."""
    path = tmp_path / "short.pt"
    for pattern in (b"junk\nmore", b"\x80\x02}q\x00(X\x06", b"PK\x03\x04\x00\x00\x00\x00\x00", bytes(9)):
        for n in range(len(pattern) + 1):
            path.write_bytes(pattern[:n])
            assert_refused(path)


def test_random_files(tmp_path):
    """Seeded random bytes, bare and behind a pickle or zip header (so the unpickler gets far)."""
    rng = random.Random(1234)
    path = tmp_path / "random.pt"
    for k in range(300):
        head = (b"", b"\x80\x02", b"\x80\x04\x95", b"PK\x03\x04")[k % 4]
        path.write_bytes(head + rng.randbytes(rng.randint(1, 200)))
        assert_refused(path)


def test_truncated_checkpoint_at_many_offsets(tmp_path, real):
    path = tmp_path / "cut.pt"
    offsets = sorted(set(range(0, 64)) | set(range(64, len(real), max(1, len(real) // 150))) | {len(real) - 1})
    for n in offsets:
        path.write_bytes(real[:n])
        assert_refused(path)


def test_corrupted_pickle_bytes_load_or_are_refused(tmp_path, real):
    """Bytes changed inside data.pkl (the pickled structure; torch checks no CRC, so the
    unpickler reads them): either the file still loads and builds, or it is refused with a
    SuiteError naming it; no other exception escapes."""
    orig = tmp_path / "orig.pt"
    orig.write_bytes(real)
    with zipfile.ZipFile(orig) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("/data.pkl"))
    name_len, extra_len = struct.unpack("<HH", real[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # the local file header is 30 bytes + name + extra
    assert real[start:start + 2] == b"\x80\x02"  # pickle protocol 2 opens data.pkl
    rng = random.Random(99)
    bad = tmp_path / "changed.pt"
    refused = 0
    for _ in range(60):
        data = bytearray(real)
        for _ in range(rng.randint(1, 4)):
            data[start + rng.randrange(info.file_size)] = rng.randrange(256)
        bad.write_bytes(bytes(data))
        try:
            load_model(bad)
        except SuiteError as exc:
            assert str(bad) in str(exc) and "\n" not in str(exc)
            refused += 1
    assert refused > 0  # the changes did reach the unpickler


def _payload(**changes):
    """A valid-looking checkpoint dict with some fields replaced (None: removed)."""
    good = {"format": FORMAT, "version": VERSION,
            "model_config": {"arch": "resnet20", "kind": "ann", "num_classes": 10, "in_channels": 1,
                             "input_size": 8, "width": 0.25},
            "data_spec": {"name": "digits", "size": 8}, "train_config": {}, "epoch": 1, "metrics": [],
            "state": {"model": {}}}
    good.update(changes)
    return {k: v for k, v in good.items() if v is not None}


@pytest.mark.parametrize("content", [
    {"weights": torch.zeros(2)}, [1, 2, 3], torch.zeros(3), 7, "text", None,
    _payload(version=None), _payload(version=2), _payload(model_config=None), _payload(data_spec=None),
    _payload(state=None), _payload(epoch=None), _payload(metrics=None), _payload(train_config=None),
    _payload(model_config=[1, 2]), _payload(model_config={"arch": "resnet20"}),
    _payload(model_config={"arch": "resnet20", "kind": "ann", "num_classes": "ten", "in_channels": 1,
                           "input_size": 8, "mean": "abc"}),
    _payload(model_config={"shape": 3}), _payload(data_spec="digits"), _payload(data_spec={"size": 8}),
    _payload(data_spec={"name": "digits", "seed": "x"}), _payload(epoch="one"), _payload(epoch=[1]),
    _payload(metrics=5), _payload(train_config=[1]), _payload(state=[1]), _payload(state={}),
    _payload(state={"model": [1]}), _payload(state={"model": {"conv1.weight": "w"}}),
], ids=lambda c: type(c).__name__)
def test_wrong_content_names_the_file(tmp_path, content):
    """A valid torch.save file holding something other than a suite checkpoint."""
    path = tmp_path / "wrong.pt"
    torch.save(content, path)
    assert_refused(path)


STORED = _payload()["model_config"]  # a valid stored model config (the flat dict of ModelConfig.to_dict)


@pytest.mark.parametrize("stored, message", [
    ({"shape": 3}, "the stored ModelConfig is not valid: model config has unknown fields ['shape']"),
    ({**STORED, "num_classes": "ten"},
     "the stored ModelConfig is not valid: number of classes must be a whole number, got 'ten'"),
    ({**STORED, "mean": "abc"},
     "the stored ModelConfig holds values of the wrong type (could not convert string to float: 'a')"),
    ({**STORED, "kind": "cnn"},
     "the stored ModelConfig is not valid: unknown model kind 'cnn'; choose one of: snn, ann"),
    ({**STORED, "tau": 0.5},
     "the stored ModelConfig is not valid: --tau must be a finite number in [1, 1e+06], got 0.5"),
    ({**STORED, "width": 0},
     "the stored ModelConfig is not valid: --width must be a finite number in [0.0625, 64], got 0"),
    ({**STORED, "mean": [0.5, 0.5]},
     "the stored ModelConfig is not valid: normalisation has 2 mean values for 1 input channels"),
], ids=["unknown-field", "classes-text", "mean-text", "kind", "tau", "width", "mean-count"])
def test_stored_model_config_is_checked_as_the_options_are(tmp_path, stored, message):
    """The stored model config is read as the options it was (ModelConfig.from_dict builds its
    ModelSpec): each refusal names the file, the value and what is wrong with it."""
    path = tmp_path / "stored.pt"
    torch.save(_payload(model_config=stored), path)
    assert str(assert_refused(path)) == f"{path}: {message}"


class RunsCode:
    """Unpickling this calls `action(*args)`, as a malicious checkpoint would."""

    def __init__(self, action, *args):
        self.action, self.args = action, args

    def __reduce__(self):
        return self.action, self.args


@pytest.mark.parametrize("action", [open, os.mkdir], ids=["builtins.open", "os.mkdir"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "inside-a-checkpoint"])
def test_pickled_code_is_never_run(tmp_path, action, wrapped):
    """A file whose unpickling would create a marker file is refused without running it."""
    marker = tmp_path / "marker"
    evil = RunsCode(action, str(marker), *(["w"] if action is open else []))
    path = tmp_path / "evil.pt"
    torch.save(_payload(state={"model": {}, "extra": evil}) if wrapped else evil, path)
    message = str(assert_refused(path))
    assert not marker.exists(), "loading the checkpoint ran code from it"
    assert message == (f"{path} is not a plain-weights checkpoint (it holds pickled Python objects, "
                       "which could run code); not loaded")
