"""Which sectors are in each state, and since when: counts and the oldest per state.

Kept up to date on every sector change (O(1)), so a metrics scrape reads the count and
the oldest entry time of each state without looking at every sector.  A state's sectors
are kept in the order they entered it, so the first is the oldest.
"""

from __future__ import annotations

from collections.abc import Iterable


class StateAges:
    """Sector number → (state, since), grouped by state in order of entry."""

    def __init__(self) -> None:
        self._by_state: dict[str, dict[int, float]] = {}
        self._state_of: dict[int, str] = {}

    def load(self, entries: Iterable[tuple[int, str, float]]) -> None:
        """Start from ``(number, state, since)`` entries (in any order)."""
        self._by_state.clear()
        self._state_of.clear()
        for number, state, since in sorted(entries, key=lambda e: e[2]):
            self.enter(number, state, since)

    def enter(self, number: int, state: str, now: float) -> None:
        """Sector ``number`` is in ``state``; it entered it ``now`` unless it already was."""
        old = self._state_of.get(number)
        if old == state:
            return
        if old is not None:
            members = self._by_state[old]
            del members[number]
            if not members:
                del self._by_state[old]
        self._by_state.setdefault(state, {})[number] = now
        self._state_of[number] = state

    def counts(self) -> dict[str, int]:
        """Sectors per state."""
        return {state: len(members) for state, members in self._by_state.items()}

    def oldest(self, now: float) -> dict[str, float]:
        """Per state, the seconds its longest-standing sector has been there."""
        return {state: max(0.0, now - next(iter(members.values())))
                for state, members in self._by_state.items()}
