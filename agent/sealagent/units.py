"""Byte sizes in words, as Lotus prints them."""

from __future__ import annotations

from typing import Final

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
