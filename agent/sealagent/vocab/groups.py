"""Storage groups: where a sector's files may move (Lotus' ``Groups`` and ``AllowTo``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def allowed_groups(allow_to: Iterable[Sequence[str]]) -> frozenset[str] | None:
    """The groups files may move to, given each holding path's ``AllowTo``: None
    (anywhere) unless every holder names some, else the union of what they name."""
    lists = list(allow_to)
    if not lists or not all(lists):
        return None
    return frozenset(group for names in lists for group in names)
