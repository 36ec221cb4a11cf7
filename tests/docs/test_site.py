"""The documentation site (mkdocs.yml, docs/): it builds with no warning (`--strict`: a broken
link, a missing page or a bad reference fails), every link and file a built page points to
exists, and nothing is fetched from elsewhere; the CLI reference is generated from the app.
The build takes about 1.5 s on 2 cores, once for the module."""

from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import typer

from tests.support.doc_pages import ROOT

HOOK = ROOT / "docs" / "hooks" / "cli_reference.py"


def load_hook():
    spec = importlib.util.spec_from_file_location("cli_reference", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.fail("mkdocs and mkdocstrings are not installed: pip install -e '.[test]' (or '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert not warnings, "\n".join(warnings)
    return out


def html_pages(site: Path) -> list[Path]:
    return [p for p in site.rglob("*.html") if p.name != "404.html"]


LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")


def test_every_page_of_the_navigation_is_built(site):
    expected = ["index.html", "tutorials/first-look.html", "tutorials/own-model.html", "tutorials/event-attacks.html",
                "tutorials/at-scale.html", "reference/cli.html", "reference/api/cka.html", "reference/formats.html",
                "reference/benchmarks.html", "design.html"]
    missing = [p for p in expected if not (site / p).is_file()]
    assert not missing, missing


def test_every_link_and_file_a_page_points_to_exists(site):
    broken = []
    for page in html_pages(site):
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            url = urlsplit(html.unescape(target))
            if url.scheme or target.startswith(("#", "//", "mailto:")):
                continue
            path = (page.parent / unquote(url.path)).resolve() if url.path else page
            if url.path.endswith("/"):
                path = path / "index.html"
            if not path.exists():
                broken.append(f"{page.relative_to(site)} -> {target}")
            elif url.fragment and path.suffix == ".html":
                ids = set(re.findall(r"""id\s*=\s*["']([^"']+)["']""", path.read_text(encoding="utf-8")))
                if unquote(url.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)} -> {target} (no such anchor)")
    assert not broken, "\n".join(broken)


def test_nothing_is_fetched_from_elsewhere(site):
    """Scripts, style sheets, images and fonts come from the site itself (links to other pages
    are fine: a reader follows them, the browser does not fetch them)."""
    fetched = re.compile(r"""<(?:script|img|iframe|source)[^>]*\ssrc\s*=\s*["'](?:https?:)?//"""
                         r"""|<link[^>]*\shref\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I)
    hits = []
    for path in [*html_pages(site), *site.rglob("*.css"), *site.rglob("*.js")]:
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{path.relative_to(site)}: {m.group(0)[:80]}" for m in fetched.finditer(text)]
    assert not hits, "\n".join(hits)


def test_the_api_reference_is_generated_from_the_docstrings(site):
    """Each public package's page holds its exported functions with their signatures and docstrings."""
    from suite.cka import compare_models

    page = html.unescape(re.sub(r"<[^>]+>", "", (site / "reference" / "api" / "cka.html").read_text()))
    assert "compare_models" in page
    first_line = compare_models.__doc__.strip().splitlines()[0].strip()
    assert " ".join(first_line.split()) in " ".join(page.split())


def test_the_cli_page_holds_every_command_and_option(site):
    from suite.cli import app

    page = html.unescape(re.sub(r"<[^>]+>", "", (site / "reference" / "cli.html").read_text()))
    root = typer.main.get_command(app)
    stack, seen = [("suite", root)], 0
    while stack:
        path, cmd = stack.pop()
        assert path in page, path
        for p in cmd.params:
            for opt in getattr(p, "opts", []):
                assert opt in page, f"{path} {opt}"
                seen += 1
        stack += [(f"{path} {n}", c) for n, c in getattr(cmd, "commands", {}).items()]
    assert seen > 50


def test_a_command_or_option_added_later_appears_without_editing_a_page():
    hook = load_hook()
    app = typer.Typer()

    @app.command()
    def first(size: int = typer.Option(3, help="How big.")):
        """Do one thing."""

    @app.command()
    def later(flavour: str = typer.Option("plain", "--flavour", help="Which flavour.")):
        """Added later."""

    text = hook.reference_markdown(app, "tool")
    assert "## `tool first`" in text and "## `tool later`" in text
    assert "`--flavour <str>` | Which flavour. [default: plain]" in text
    assert "`--size <int>` | How big. [default: 3]" in text
    page = hook.on_page_markdown(f"# CLI\n\n{hook.MARKER}\n", None, None, None)
    assert "## `suite attack`" in page and "--threat" in page and hook.MARKER not in page


def test_the_readme_links_only_to_files_that_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    missing = [t for t in targets if not urlsplit(t).scheme and not (ROOT / unquote(urlsplit(t).path)).exists()]
    assert targets and not missing, missing
