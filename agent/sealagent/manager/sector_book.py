"""The manager's sectors: the in-memory mirror of the ``sectors`` table and its changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import structlog

from sealagent.errors import ManagerError
from sealagent.manager import fsm, sector_store
from sealagent.manager.context import ManagerContext
from sealagent.manager.db import Transaction
from sealagent.manager.fsm import Event, SectorInfo, SectorPiece, SectorState
from sealagent.manager.mirror import Mirror
from sealagent.manager.state_ages import StateAges

_log = structlog.get_logger("sealagent.manager")


class SectorBook(Mirror[int, SectorInfo]):
    """Every sector by number; changes are committed before they show here."""

    def __init__(self, context: ManagerContext) -> None:
        super().__init__()
        self._context = context
        self.ages = StateAges()
        """Sectors per state and since when (what the metrics read)."""

    def load(self, sectors: Mapping[int, SectorInfo],
             changed_at: Mapping[int, float] | None = None) -> None:
        """Start from the sectors read from the database; ``changed_at`` (a sector's last
        change) stands for when it entered its state, which the database does not keep."""
        self._rows = dict(sectors)
        now = self._context.clock()
        since = changed_at or {}
        self.ages.load((s.number, str(s.state), since.get(s.number, now))
                       for s in sectors.values())

    def find(self, number: int) -> SectorInfo:
        """The sector ``number``; ManagerError when there is none."""
        try:
            return self._rows[number]
        except KeyError:
            raise ManagerError(f"no sector {number}") from None

    def stored(self, sector: SectorInfo) -> None:
        """A caller committed ``sector`` in its own transaction: mirror it."""
        self._rows[sector.number] = sector
        self.ages.enter(sector.number, str(sector.state), self._context.clock())
        self._context.pipeline_wake.set()

    async def commit(self, sector: SectorInfo, kind: str, message: str,
                     extra: Callable[[Transaction], None] | None = None) -> None:
        """Write a sector and its log line (and ``extra``) in one transaction. Lock held."""
        now = self._context.clock()

        def write(tx: Transaction) -> None:
            sector_store.save_sector(tx, sector, now)
            sector_store.add_log(tx, sector.number, kind, message, now)
            if extra is not None:
                extra(tx)

        await self._context.db.transaction(write)
        _log.info(message, sector=sector.number, state=str(sector.state), kind=kind)
        self.stored(sector)

    async def apply_locked(self, number: int, event: Event,
                           expect: SectorState | None = None) -> None:
        """Apply an FSM event to a sector (unless it left ``expect``). Lock held."""
        sector = self._rows[number]
        if expect is not None and sector.state is not expect:
            _log.info("event dropped: the sector moved on", sector=number, kind=event.name,
                      state=str(sector.state))
            return
        new, message = fsm.apply(sector, event, self._context.policy, self._context.clock())
        await self.commit(new, event.name, message)

    async def apply(self, number: int, event: Event, expect: SectorState | None = None) -> None:
        """:meth:`apply_locked` under the lock."""
        async with self._context.lock:
            await self.apply_locked(number, event, expect)

    async def create(self, pieces: Callable[[int], tuple[SectorPiece, ...]],
                     state: SectorState,
                     prepare: Callable[[int], Awaitable[None]] | None = None) -> int:
        """Allocate a number, run ``prepare(number)``, then start the sector in ``state``."""
        number = await self._context.db.transaction(sector_store.allocate_number)
        if prepare is not None:
            await prepare(number)
        sector = SectorInfo(number=number, proof=int(self._context.proof), state=state,
                            pieces=pieces(number))
        async with self._context.lock:
            await self.commit(sector, "SectorStart",
                              f"sector created with {len(sector.pieces)} piece(s)")
        return number
