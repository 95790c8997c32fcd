"""Sizes in words: parsing what operators type."""

from __future__ import annotations

import pytest

from sealagent.errors import ConfigError
from sealagent.units import parse_size, size_str


@pytest.mark.parametrize(("text", "value"), [
    ("4096", 4096), ("2KiB", 2048), ("2k", 2048), ("2KB", 2048), ("1.5GiB", 3 << 29),
    ("2TiB", 2 << 40), (" 7 b ", 7), ("1p", 1 << 50),
])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "lots", "-1GiB", "2XiB", "1e3", "GiB"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ConfigError, match="not a size"):
        parse_size(text)


def test_parse_size_reads_what_size_str_writes_for_whole_units() -> None:
    assert parse_size(size_str(3 << 30).replace(" ", "")) == 3 << 30
