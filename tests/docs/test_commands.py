"""Every `suite` command a page shows exists, with every option it uses, and every Python
snippet compiles and imports what it names: a renamed command or option fails here, before a
reader meets it (the slow tutorial tests then run the tutorials' commands)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re

import pytest
import typer

from suite.cli import app
from tests.support.doc_pages import ROOT, blocks, commands, pages, suite_args


def shown_commands() -> list[tuple[str, list[str]]]:
    out = []
    for page in pages():
        for block in blocks(page, ("bash", "shell")):
            for line in commands(block.text):
                out += [(f"{block.where}: {line}", args) for args in suite_args(line)]
    return out


def resolve(args: list[str]):
    """The click command `suite ARGS` names, and the arguments left for it; a group followed by
    an unknown word is an error."""
    cmd, rest = typer.main.get_command(app), list(args)
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        if rest[0] not in cmd.commands:
            raise AssertionError(f"no command {rest[0]!r}")
        cmd, rest = cmd.commands[rest[0]], rest[1:]
    return cmd, rest


def test_pages_show_suite_commands():
    shown = shown_commands()
    assert len(shown) > 40
    names = {args[0] for _, args in shown if args}
    assert {"demo", "train", "attack", "cka", "experiment", "report"} <= names


@pytest.mark.parametrize("where,args", shown_commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_command_and_option_a_page_uses_exists(where, args):
    cmd, rest = resolve(args)
    assert not hasattr(cmd, "commands") or "--help" in rest, f"{where}: a command group without a command"
    known = {"--help"} | {o for p in cmd.params for o in (*getattr(p, "opts", []), *getattr(p, "secondary_opts", []))}
    unknown = [t.split("=")[0] for t in rest if t.startswith("--") and t.split("=")[0] not in known]
    assert not unknown, f"{where}: unknown option(s) {unknown}"


def test_the_resolver_catches_a_renamed_option_or_command():
    with pytest.raises(AssertionError):
        resolve(["data", "lst"])
    cmd, rest = resolve(["attack", "--epsilon", "8/255"])
    assert "--epsilon" not in {o for p in cmd.params for o in getattr(p, "opts", [])}


def python_blocks():
    return [b for page in pages() for b in blocks(page, ("python",))]


@pytest.mark.parametrize("block", python_blocks(), ids=lambda b: b.where)
def test_every_python_snippet_compiles_and_imports_what_it_names(block):
    tree = ast.parse(block.text, filename=block.where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("suite"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), \
                    f"{block.where}: {node.module} has no {alias.name}"


def test_the_readme_quickstart_is_what_ci_runs():
    """The first bash block of the README: install and demo, then install and test (.ci/run reads
    line 2)."""
    (first, *_) = blocks(ROOT / "README.md", ("bash",))
    lines = commands(first.text)
    assert len(lines) == 2 and lines[0].endswith("suite demo") and lines[1].endswith("pytest")


def test_every_tutorial_shows_what_its_commands_printed():
    """Each bash or python block of a tutorial is followed by the text it printed (or a figure),
    and no page keeps a marker for output still to be pasted."""
    from tests.support.doc_pages import DOCS, FENCE, TUTORIALS

    missing = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        missing += [f"{page.relative_to(ROOT)}: {m}" for m in re.findall(r"<!-- (?:output|figure|finding): [^>]*-->", text)]
    for name in TUTORIALS:
        page = DOCS / "tutorials" / f"{name}.md"
        text = page.read_text(encoding="utf-8")
        fences = list(FENCE.finditer(text))
        for k, m in enumerate(fences):
            if m.group(1) in ("bash", "python"):
                after = fences[k + 1].group(1) if k + 1 < len(fences) else None
                if after != "text":
                    line = text.count("\n", 0, m.start()) + 1
                    missing.append(f"{page.relative_to(ROOT)}:{line}: no text block after this block")
    assert not missing, "\n".join(missing)


def test_the_readme_model_file_is_the_example_as_it_is():
    """The README quotes examples/sew_resnet.toml whole (the tutorial includes the file itself), so
    the file a reader copies from the front page is the one the tests load."""
    quoted = [b.text for b in blocks(ROOT / "README.md", ("toml",))]
    assert quoted == [(ROOT / "examples" / "sew_resnet.toml").read_text(encoding="utf-8")]
