"""The CLI's front door: `--help` reads cleanly, `python -m suite` runs (the form `torchrun -m
suite` needs), shell completion is on (issue 9, defects 6 and 7)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import cli

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [[], ["train"], ["demo"], ["cka"], ["attack"], ["experiment"], ["report"], ["data"], ["data", "list"],
            ["data", "check"], ["data", "download"]]


def help_text(runner, *command: str) -> str:
    result = runner.invoke(__import__("suite.cli", fromlist=["app"]).app, [*command, "--help"],
                           prog_name="suite", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def test_cka_usage_names_no_empty_argument(runner):
    usage = help_text(runner, "cka").strip().splitlines()[0]
    assert usage.split() == ["Usage:", "suite", "cka", "[OPTIONS]"], usage


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "suite")
def test_flags_show_no_value_type(runner, command):
    """A flag takes no value: its help line shows no `<bool>` (or any other) type after it."""
    text = help_text(runner, *command)
    assert "<bool>" not in text and "BOOLEAN" not in text, text
    assert re.search(r"^\s+--help\s+Show this message and exit\.", text, re.M), text


def test_flag_help_lines_of_cka_and_train(runner):
    cka, train = help_text(runner, "cka"), help_text(runner, "train")
    for text, flag in ((cka, "--other-model"), (train, "--tet"), (train, "--resume"), (train, "--no-residual")):
        assert re.search(rf"^\s+{flag}\s+[^<\s]", text, re.M), (flag, text)  # the flag, then its help


def test_command_summaries_are_not_cut(runner):
    """The command lists show each command's one-line summary whole (no trailing `...`)."""
    for command in ([], ["data"]):
        listing = help_text(runner, *command).split("Commands:")[1]
        assert "..." not in listing, listing


@pytest.mark.parametrize("words,needle", [
    (["--compare", "clean", "adv"], "--compare clean adv needs --attack"),
    (["--compare", "static", "event"], "--compare static event needs --model"),
    (["--compare", "models", "twice"], "unknown comparison 'models twice'"),
])
def test_compare_takes_two_words(runner, tmp_path, words, needle):
    code, out = cli(runner, "cka", *words, "--out", tmp_path)
    assert code == 2 and needle in out, out


def test_python_m_suite_runs_the_cli():
    env = {**os.environ, "COLUMNS": "80"}
    run = subprocess.run([sys.executable, "-m", "suite", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Usage: python -m suite [OPTIONS] COMMAND"), run.stdout
    for command in ("train", "demo", "cka", "attack", "report", "data"):
        assert re.search(rf"^\s+{command}\s", run.stdout, re.M), run.stdout


def test_shell_completion_is_on(runner):
    assert "--install-completion" in help_text(runner)
    from suite.cli import app
    result = runner.invoke(app, ["--show-completion", "bash"], prog_name="suite")
    assert result.exit_code == 0, result.output
    assert "_SUITE_COMPLETE=complete_bash" in result.output and "complete " in result.output, result.output
