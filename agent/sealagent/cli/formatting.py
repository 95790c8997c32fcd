"""How the commands print: Lotus' tables, usage bars and durations.

Byte sizes are :func:`sealagent.units.size_str` (the scheduler's messages use it too).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from typing import Any, Final

BAR_COLUMNS: Final = 64
"""Width of a usage bar."""

_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]*\.)?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(doc: str | None) -> str:
    """A docstring as a help text: reST roles and ````literals```` become plain words."""
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", doc or "")).strip()


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, like Lotus' tables."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


def bar(total: float, reserved: float, used: float) -> str:
    """``[|||||      ]``: ``reserved`` then ``used`` as a share of ``total``."""
    if total <= 0:
        return " " * BAR_COLUMNS
    first = max(0, round(reserved / total * BAR_COLUMNS))
    second = max(0, round(used / total * BAR_COLUMNS))
    filled = min(BAR_COLUMNS, first + second)
    return "|" * filled + " " * (BAR_COLUMNS - filled)


def go_duration(seconds: float) -> str:
    """A duration as Go prints one truncated to 100 ms (``3m2.1s``, ``41.3s``)."""
    tenths = int(max(0.0, seconds) * 10)
    if tenths == 0:
        return "0s"
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    secs = f"{rest // 10}.{rest % 10}".removesuffix(".0")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json``: print the command's data as JSON (schema in docs/json.md)."""
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of text (fields in docs/json.md)")


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON with sorted keys (stable for scripts)."""
    print(json.dumps(value, indent=2, sort_keys=True))
