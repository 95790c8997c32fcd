"""Environment variables read as numbers and switches, with errors that name the variable.

Every value read from the environment goes through here, so that a bad one is a
:class:`~sealagent.errors.ConfigError` saying which variable holds what, never a bare
``ValueError`` from ``int()``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Final, Literal

from sealagent.errors import ConfigError

NumberKind = Literal["int", "bytes", "float"]
"""``int`` (a sign allowed), ``bytes`` (digits only) or ``float``."""

TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS: Final = frozenset({"", "0", "false", "no", "off"})


def parse_number(name: str, text: str, kind: NumberKind = "int",
                 minimum: int = 0) -> int | float:
    """The value ``text`` of variable ``name`` as a number of ``kind``, at least ``minimum``.

    :raises ConfigError: naming the variable and what it expects.
    """
    value = text.strip()
    if kind == "float":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < minimum:
            raise ConfigError(f"{name}={text!r}: expected a number ≥ {minimum}")
        return number
    digits = value[1:] if kind == "int" and value[:1] in "+-" else value
    if not (digits.isascii() and digits.isdigit()) or int(value) < minimum:
        what = "an integer number of bytes" if kind == "bytes" else "an integer"
        raise ConfigError(f"{name}={text!r}: expected {what} ≥ {minimum}")
    return int(value)


def env_int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    """Integer variable ``name`` (``default`` when unset)."""
    text = environ.get(name)
    return default if text is None else int(parse_number(name, text, "int", minimum))


def env_flag(environ: Mapping[str, str], name: str) -> bool:
    """Switch variable ``name``: ``1/true/yes/on`` or ``0/false/no/off`` (any case), or unset.

    :raises ConfigError: any other value (a typo must not silently mean "off").
    """
    value = environ.get(name, "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={environ[name]!r}: expected 1, true, yes, on or 0, false, "
                      "no, off")


def check_tmpdir(environ: Mapping[str, str]) -> None:
    """Refuse a ``TMPDIR`` that is not a writable directory (Python would silently use
    another one, and scratch files would land where the operator did not say); for the
    commands that write scratch files (``run``, ``bench``, ``devnet``)."""
    value = environ.get("TMPDIR")
    if value is None:
        return
    if not os.path.isdir(value) or not os.access(value, os.W_OK | os.X_OK):
        raise ConfigError(f"TMPDIR={value} is not a writable directory")
