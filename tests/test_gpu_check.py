"""benchmarks/gpu_check.py: its dry run (the GPU code on the CPU, tiny size) runs and reports
every number it promises, consistently; without CUDA and without --dry-run it says so."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    return runpy.run_path(str(SCRIPT), run_name="gpu_check")


def test_dry_run_reports_every_task_and_the_lif_share(gpu_check, capsys):
    assert gpu_check["main"](["--dry-run"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(snn|ann)\s+(train|pgd10|cka)\s+([0-9.]+)\s+(\S+)$", out, flags=re.M)
    assert [(kind, task) for kind, task, _, _ in rows] == [
        (k, t) for k in ("snn", "ann") for t in ("train", "pgd10", "cka")]
    assert all(float(rate) > 0 and peak == "-" for _, _, rate, peak in rows)  # no GPU memory on the CPU
    share = re.search(r"LIF share of an SNN training step \(CPU time\): ([0-9.]+)%", out)
    assert share and 0 < float(share.group(1)) < 100
    verdict = "not above" if float(share.group(1)) <= 20 else "above"
    assert f"  {verdict} the 20% that calls for a fused LIF kernel" in out
    ratio = re.search(r"SNN step / \(T x ANN step\): ([0-9.]+) ms / \((\d+) x ([0-9.]+) ms\) = ([0-9.]+)", out)
    snn_ms, T, ann_ms, printed = float(ratio.group(1)), int(ratio.group(2)), float(ratio.group(3)), ratio.group(4)
    assert T == 2 and abs(float(printed) - snn_ms / (T * ann_ms)) <= 0.006  # the ms are rounded to 0.01
    assert max(len(line) for line in out.splitlines()) <= 80  # a CI log's width


def test_lif_share_is_zero_without_lif_layers(gpu_check):
    size = gpu_check["Size"](batch=4, repeats=1, timesteps=2, width=0.25, side=8, cka_samples=8, cka_batch=4)
    cpu = torch.device("cpu")
    ann = gpu_check["build"]("ann", size, cpu)
    assert gpu_check["lif_share"](ann, gpu_check["train_closure"](ann, size, cpu), cpu, 1) == 0.0


def test_without_cuda_it_asks_for_the_dry_run(gpu_check, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check["main"]([]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: no CUDA device here; --dry-run runs the same code on the CPU"
