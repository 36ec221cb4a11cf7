"""MkDocs hook: the command-line reference, generated from the Typer app at build time.

A page holding the line `<!-- suite-cli-reference -->` gets, in its place, every command of
`suite` (groups included, in the app's order) with its usage, its help text, its arguments and
every option, each as `suite COMMAND --help` prints it (names, value type, help, default). A
command or option added later appears without editing a page.
"""

from __future__ import annotations

import inspect

import typer

MARKER = "<!-- suite-cli-reference -->"

# Typer ships its own copy of click, so the command tree is read by duck typing: a group has
# `commands`, a parameter says whether it is an "argument" or an "option".


def _commands(cmd, path: tuple[str, ...]):
    """(path, command) for `cmd` and every command below it, in registration order."""
    yield path, cmd
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            if not sub.hidden:
                yield from _commands(sub, path + (name,))


def _cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def command_markdown(path: tuple[str, ...], cmd) -> str:
    """One command's section: heading, usage, help, then a table of its parameters."""
    ctx = cmd.context_class(cmd, info_name=" ".join(path))
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    out = [f"## `{' '.join(path)}`", "", "```text", f"{' '.join(path)} {usage}".rstrip(), "```", ""]
    if cmd.help:
        out += [inspect.cleandoc(cmd.help), ""]
    if hasattr(cmd, "commands"):
        subs = [f"`{' '.join(path + (n,))}`" for n, c in cmd.commands.items() if not c.hidden]
        out += ["Commands: " + ", ".join(subs) + ".", ""]
    rows = [p.get_help_record(ctx) for p in cmd.params if not getattr(p, "hidden", False)]
    rows = [r for r in rows if r is not None]
    if rows:
        out += ["| argument or option | what it does |", "| --- | --- |"]
        out += [f"| `{_cell(sig)}` | {_cell(what)} |" for sig, what in rows]
        out.append("")
    return "\n".join(out)


def reference_markdown(app: typer.Typer, name: str = "suite") -> str:
    """Every command of `app`, as Markdown."""
    root = typer.main.get_command(app)
    return "\n".join(command_markdown(path, cmd) for path, cmd in _commands(root, (name,)))


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs event: expand the marker on any page that holds it."""
    if MARKER not in markdown:
        return markdown
    from suite.cli import app

    return markdown.replace(MARKER, reference_markdown(app))
