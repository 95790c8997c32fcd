"""Byte sizes in words, as Lotus prints them."""

from __future__ import annotations

import re
from typing import Final

from sealagent.errors import ConfigError

_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def size_str(value: float) -> str:
    """Bytes with a binary unit and four significant digits (Lotus' ``types.SizeStr``).

    ``size_str(2032)`` is ``1.984 KiB``; ``size_str(184_800_000_000)`` is ``172.1 GiB``.
    """
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.4g} {_UNITS[unit]}"


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtpe]i?b?|b)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``2TiB``, ``512GiB``, ``1.5T``, ``4096`` (binary units; ``K``, ``KB`` and
    ``KiB`` all mean 1024).

    :raises ConfigError: not a size.
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ConfigError(f"not a size: {text!r} (try 2TiB, 512GiB or a number of bytes)")
    number, unit = match.groups()
    power = 0 if unit is None or unit.lower() == "b" else "kmgtpe".index(unit[0].lower()) + 1
    return int(float(number) * 1024 ** power)
