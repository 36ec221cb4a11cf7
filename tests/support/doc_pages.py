"""The documentation's pages as the tests read them: their fenced code blocks, the shell
commands in them and the `suite` arguments of each.

Convention (docs/guide/tests.md): a ```bash block is run by the tutorial tests, in order, page
by page; a ```shell block is shown, not run (GPUs, several nodes); ```text holds what a command
printed; ```python is run like a bash block.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TUTORIALS = ["first-look", "model-pair", "choosing-an-attack", "findings", "own-model", "event-attacks",
             "at-scale"]
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """Every Markdown page of the site, and the README (the repository's front page)."""
    return sorted(p for p in DOCS.rglob("*.md")) + [ROOT / "README.md"]


def blocks(page: Path, langs: tuple[str, ...] = ("bash", "shell", "python")) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(page, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2))
            for m in FENCE.finditer(text) if m.group(1) in langs]


def commands(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def suite_args(command: str) -> list[list[str]]:
    """The arguments after `suite` (or `python -m suite`, `torchrun ... -m suite`) of every part
    of a command line (parts split at &&, ; and |)."""
    out = []
    tokens = shlex.split(command, comments=True)
    parts, part = [], []
    for t in tokens:
        if t in ("&&", ";", "|", "||"):
            parts.append(part)
            part = []
        else:
            part.append(t)
    parts.append(part)
    for p in parts:
        words = [Path(w).name if i == 0 else w for i, w in enumerate(p)]
        if words and words[0] == "suite":
            out.append(p[1:])
        elif "-m" in p and p.index("-m") + 1 < len(p) and p[p.index("-m") + 1] == "suite":
            out.append(p[p.index("-m") + 2:])
    return out
