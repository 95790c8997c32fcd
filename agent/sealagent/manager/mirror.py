"""A read-only mapping over a dict its owner changes: the in-memory mirror of a table."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Mirror(Mapping[K, V]):
    """Rows by key; subclasses change :attr:`_rows` only after the database committed."""

    def __init__(self) -> None:
        self._rows: dict[K, V] = {}

    def __getitem__(self, key: K) -> V:
        """The row ``key`` (KeyError when there is none)."""
        return self._rows[key]

    def __iter__(self) -> Iterator[K]:
        """The keys."""
        return iter(self._rows)

    def __len__(self) -> int:
        """How many rows."""
        return len(self._rows)
