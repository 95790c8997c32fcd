"""Unseal requests and piece retrieval (``sectors unseal``, ``pieces get``).

:class:`UnsealRequests` owns the admin side of unsealing:

- :meth:`~UnsealRequests.request` queues an Unseal task for a sealed sector that has no
  unsealed copy (Lotus' ``SectorsUnsealPiece``).  The task row, written before the call
  is answered, is the request's durable record: it goes through the scheduler, windows,
  re-attach and retries like any task, but outside the sector's state flow
  (:mod:`.unsealing`);
- :meth:`~UnsealRequests.status` says where the request is and, while it is queued, what
  it waits for;
- :meth:`~UnsealRequests.read` hands back a deal piece's original bytes, read from the
  indexed unsealed copy with Range reads and unpadded (``Pieces.Read`` answers one such
  read, ``GET /piece/<cid>``, :mod:`.piece_route`, streams a piece as a series of them).
  The caller checks CommP over the whole piece (``pieces get`` does before it writes the
  file).
"""

from __future__ import annotations

from typing import Any

import structlog
import trio

from sealagent.errors import ManagerError
from sealagent.manager import sector_store, tasks, unsealing
from sealagent.manager.context import ManagerContext
from sealagent.manager.files import SectorFiles
from sealagent.manager.fsm import SectorInfo
from sealagent.manager.sector_book import SectorBook
from sealagent.manager.sessions import SessionRegistry
from sealagent.manager.task_book import TaskBook
from sealagent.manager.tasks import TaskRecord, TaskState
from sealagent.phases import Phase
from sealagent.proofs.fr32 import unpad
from sealagent.sched.scheduler import Scheduler
from sealagent.vocab.sectors import FileType

_log = structlog.get_logger("sealagent.manager")


class UnsealRequests:
    """Unseal tasks asked for by admin calls, and reading pieces back."""

    def __init__(self, context: ManagerContext, sched: Scheduler, sectors: SectorBook,
                 tasks: TaskBook, files: SectorFiles, sessions: SessionRegistry) -> None:
        self._context = context
        self._sched = sched
        self._sectors = sectors
        self._tasks = tasks
        self._files = files
        self._sessions = sessions

    def open_tasks(self, number: int) -> list[TaskRecord]:
        """The sector's open Unseal tasks."""
        return [t for t in self._tasks.values()
                if t.sector == number and t.phase in unsealing.REQUEST_PHASES]

    def unsealed(self, number: int) -> list[str]:
        """The paths the index says hold the sector's unsealed file."""
        return self._files.holders(number, FileType.UNSEALED)

    async def request(self, number: int) -> dict[str, Any]:
        """Unseal sector ``number`` unless an unsealed copy is indexed or an Unseal task is
        open; returns :meth:`status`.

        :raises ManagerError: no such sector, or it is not sealed yet.
        """
        async with self._context.lock:
            sector = self._sectors.find(number)
            unsealing.check_unsealable(sector)
            if not self.unsealed(number) and not self.open_tasks(number):
                await self._queue(sector)
        return await self.status(number)

    async def _queue(self, sector: SectorInfo) -> None:
        params = unsealing.unseal_params(self._context.miner, sector)
        task = await self._tasks.queue(sector, Phase.UNSEAL, lambda tx: params,
                                       requested="no unsealed copy is stored")
        if not self._sessions.offers(Phase.UNSEAL.task_type):
            _log.warning("no connected worker can unseal yet", sector=sector.number,
                         task=task.task_id)

    async def status(self, number: int) -> dict[str, Any]:
        """Where the sector's unsealing stands: ``status`` is ``unsealed`` (a copy is
        indexed), the open Unseal task's state, ``failed`` (the last one failed) or
        ``sealed`` (no unsealed copy, nothing asked); ``waiting`` says what a queued task
        waits for."""
        sector = self._sectors.find(number)
        history = await self._context.db.transaction(
            lambda tx: tasks.sector_tasks(tx, number))
        ours = [t for t in history if t.phase in unsealing.REQUEST_PHASES]
        last = ours[-1] if ours else None
        holders = self.unsealed(number)
        open_now = self.open_tasks(number)
        waiting = None
        if open_now:
            task = open_now[-1]
            status = str(task.state)
            if task.state is TaskState.QUEUED:
                waiting = self._waiting(task)
        elif holders:
            status = "unsealed"
        elif last is not None and last.state is TaskState.FAILED:
            status = "failed"
        else:
            status = "sealed"
        return {"number": number, "state": str(sector.state), "status": status,
                "unsealed": holders, "waiting": waiting,
                "task": None if last is None else {
                    **last.to_json(), "hostname": self._sessions.hostname(last.worker_id)}}

    def _waiting(self, task: TaskRecord) -> str | None:
        if not self._sessions.offers(task.phase.task_type):
            return (f"no connected agent runs {task.phase.label} (agents: --unseal; the "
                    "manager's own: [Storage] AllowUnseal)")
        return self._sched.waiting_reason(task.task_id, self._files.view())

    async def drop(self, number: int) -> list[str]:
        """Delete every unsealed copy of a sealed sector (the next ``pieces get`` unseals
        again); returns the paths they were in.  Refused while an Unseal task is open."""
        async with self._context.lock:
            sector = self._sectors.find(number)
            unsealing.check_unsealable(sector)
            if self.open_tasks(number):
                raise ManagerError(f"sector {number} is being unsealed; wait for it, or "
                                   "abort its Unseal job first")
            holders = self.unsealed(number)
            await self._files.remove(number, FileType.UNSEALED)
            self._tasks.files_moved([number])
            now = self._context.clock()
            message = f"unsealed copy dropped from {', '.join(holders) or 'nowhere'}"
            await self._context.db.transaction(
                lambda tx: sector_store.add_log(tx, number, "UnsealedDropped", message, now))
        _log.info("unsealed copy dropped", sector=number, paths=holders)
        return holders

    # ------------------------------------------------------------------- pieces

    def pieces(self) -> list[dict[str, Any]]:
        """Every deal piece of every sector, with whether an unsealed copy is stored."""
        return [{**span.to_json(), "state": str(sector.state),
                 "unsealed": bool(self.unsealed(sector.number))}
                for _, sector in sorted(self._sectors.items())
                for span in unsealing.piece_spans(sector)]

    def locate(self, cid: str) -> tuple[SectorInfo, unsealing.PieceSpan]:
        """The sector holding deal piece ``cid`` (ManagerError when none does)."""
        holders = {n: bool(self.unsealed(n)) for n in self._sectors}
        return unsealing.find_piece(self._sectors.values(), cid, holders)

    async def piece(self, cid: str) -> dict[str, Any]:
        """Where deal piece ``cid`` is, and its sector's unsealing status."""
        sector, span = self.locate(cid)
        return {**span.to_json(), "unsealing": await self.status(sector.number)}

    async def read(self, cid: str, offset: int, length: int) -> dict[str, Any]:
        """Piece bytes ``[offset, offset + length)`` (unpadded, at most
        :data:`~.unsealing.READ_LIMIT`) from an indexed unsealed copy, as
        ``{"data": bytes, "path_id": ...}``.

        :raises ManagerError: unknown piece, bad range, or no unsealed copy.
        """
        sector, span = self.locate(cid)
        start, size, skip = unsealing.read_window(span, offset, length)
        if not self.unsealed(sector.number):
            raise ManagerError(f"sector {sector.number} has no unsealed copy of {cid}: "
                               f"unseal it first (sealagent sectors unseal {sector.number})")
        padded, path_id = await self._files.read_range(sector.number, FileType.UNSEALED,
                                                       start, size)
        data = await trio.to_thread.run_sync(unpad, padded)
        return {"data": data[skip:skip + length], "path_id": path_id,
                "sector": sector.number}
