"""Option values: command-line text turned into numbers and names, and the checks a config's
constructor runs on them.

Parsing reads the text only (is it a number, a fraction, a comma list without empty items?);
whether a value is allowed (finite, in range, a known name) is decided once, by the config that
holds it (`TrainConfig`, `AttackConfig`, `CKAConfig` and their parts), with one message per
value. So `--eps 8/255` is parsed here and checked by `AttackConfig`, nowhere else.

No torch here: the CLI imports this module for --help.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Iterable

from suite.errors import SuiteError

MAX_TIMESTEPS = 1000  # time steps of an SNN and frame bins of event data: more is absurd here


# ----------------------------------------------------------------------------- parsing text

def parse_fraction(text: str, name: str) -> float:
    """"8/255", "0.03", "1e-2" or "0" -> float. Syntax only: the range is the config's to check."""
    raw = str(text).strip()
    try:
        if "/" in raw:
            num, den = raw.split("/", 1)
            return float(Fraction(int(num.strip()), int(den.strip())))
        return float(raw)
    except ZeroDivisionError:
        raise SuiteError(f"{name} {text!r} divides by zero") from None
    except (ValueError, TypeError):
        raise SuiteError(f"{name} {text!r} is not a number or a fraction like 8/255") from None


def parse_list(text: str, name: str) -> list[str]:
    """"a, b,c" -> ["a", "b", "c"]; an empty list or an empty item ("a,,b", "a,") is refused."""
    items = [item.strip() for item in str(text).split(",")]
    if items == [""]:
        raise SuiteError(f"{name} is empty")
    if "" in items:
        raise SuiteError(f"{name} {text!r} has an empty item")
    return items


def parse_fractions(text: str, name: str) -> list[float]:
    """"0,2/255,8/255" -> [0.0, 0.00784..., 0.0313...] (each item as `parse_fraction`)."""
    return [parse_fraction(item, name) for item in parse_list(text, name)]


def parse_ints(text: str, name: str) -> list[int]:
    """"2,4,8" -> [2, 4, 8]: whole numbers written as such (no "2.5", no "2e1")."""
    values = []
    for item in parse_list(text, name):
        try:
            values.append(int(item))
        except ValueError:
            raise SuiteError(f"{name} {text!r} is not a whole number or a list like 2,4,8") from None
    return values


# ----------------------------------------------------------------------------- checking values

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_whole(value: Any, name: str, lo: int, hi: int | None = None) -> None:
    """`value` is a whole number (an int, not a bool) in [lo, hi]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise SuiteError(f"{name} must be a whole number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        span = f">= {lo}" if hi is None else f"from {lo} to {hi}"
        raise SuiteError(f"{name} must be a whole number {span}, got {value}")


def check_real(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False) -> None:
    """`value` is a finite number in [lo, hi] ((lo, hi] with `lo_open`); NaN and inf never are."""
    if not _is_number(value):
        raise SuiteError(f"{name} must be a number, got {value!r}")
    inside = (value > lo if lo_open else value >= lo) and value <= hi
    if not (math.isfinite(value) and inside):
        span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise SuiteError(f"{name} must be a finite number in {span}, got {value:g}")


def check_choice(value: Any, name: str, choices: Iterable[str]) -> None:
    """`value` is one of `choices` (the message lists them)."""
    choices = list(choices)
    if value not in choices:
        raise SuiteError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def check_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise SuiteError(f"{name} must be true or false, got {value!r}")


def check_text(value: Any, name: str) -> None:
    if not isinstance(value, str):
        raise SuiteError(f"{name} must be text, got {value!r}")


def check_file_name(name: str | None, option: str = "--name") -> None:
    """A name that becomes a file in an output folder: not empty, no folder separators, not
    "." or "..", no leading dot (hidden files are the atomic writer's temporaries)."""
    if name is None:
        return
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{option} is empty; give a file name")
    if "/" in name or "\\" in name or "\0" in name:
        raise SuiteError(f"{option} {name!r} is a file name, not a path: no folder separators "
                         f"(put the folder in --out)")
    if name.startswith("."):
        raise SuiteError(f"{option} {name!r} must not start with a dot")
