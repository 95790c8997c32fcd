"""The pipeline driver: does each sector's next step.

The loop asks the state machine what each sector needs
(:func:`~sealagent.manager.fsm.next_step`) and does it: queue a task, draw a ticket or a
seed, submit a message, check a proof, remove files.  Steps that may take long (the
chain, a proof check, deletions) run in the background, outside the lock; the sector
stays busy until the step's event is applied, so a step never runs twice (a message is
never submitted twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import structlog
import trio

from sealagent.errors import ManagerError, SealAgentError
from sealagent.manager import fsm, pipeline, sector_store
from sealagent.manager.beacon import Beacon, ChainMessage, RandomnessTag, miner_entropy
from sealagent.manager.context import ManagerContext
from sealagent.manager.db import Transaction
from sealagent.manager.files import SectorFiles
from sealagent.manager.fsm import Event, SectorInfo
from sealagent.manager.sector_book import SectorBook
from sealagent.manager.sessions import SessionRegistry
from sealagent.manager.task_book import C1_OUTPUT, TaskBook
from sealagent.phases import Phase
from sealagent.task_kinds import StorageJob, TaskKind

MAX_SLEEP: Final = 5.0
"""Longest the pipeline loop sleeps without a wake-up."""
MAX_STEPS_AT_ONCE: Final = 32
"""Most steps one sector takes in one round (the others get their turn)."""

ProofChecker = Callable[[SectorInfo, int, bool, str], tuple[bool, str]]
"""``(sector, miner, snark, c1_output) -> (valid, message)``; runs in a worker thread."""

_log = structlog.get_logger("sealagent.manager")


class PipelineDriver:
    """Moves every sector along its pipeline (see the module docs)."""

    def __init__(self, context: ManagerContext, beacon: Beacon, sectors: SectorBook,
                 tasks: TaskBook, files: SectorFiles, sessions: SessionRegistry,
                 proof_checker: ProofChecker) -> None:
        self._context = context
        self._beacon = beacon
        self._sectors = sectors
        self._tasks = tasks
        self._files = files
        self._sessions = sessions
        self._check_proof = proof_checker
        self._busy: set[int] = set()

    async def run(self) -> None:
        """Advance the sectors whenever one changed or a wait is over."""
        wake = self._context.pipeline_wake
        async with trio.open_nursery() as nursery:
            while True:
                wake.reset()
                wake_at = await self._advance_all(nursery)
                await wake.wait(min(MAX_SLEEP, max(0.0, wake_at - self._context.clock())))

    async def _advance_all(self, nursery: trio.Nursery) -> float:
        """Do every sector's next step; returns when something next becomes due."""
        context = self._context
        wake_at = context.clock() + MAX_SLEEP
        for number in sorted(self._sectors):
            for _ in range(MAX_STEPS_AT_ONCE):
                if number in self._busy:
                    break
                step = fsm.next_step(self._sectors[number], context.policy, context.clock(),
                                     self._beacon.head())
                due = await self._do_step(number, step, nursery)
                if due is not None:
                    wake_at = min(wake_at, due)
                    break
        return wake_at

    async def _do_step(self, number: int, step: fsm.Step, nursery: trio.Nursery) -> float | None:
        """Do one step; returns when to look again (None = look again now)."""
        if isinstance(step, fsm.Idle):
            return float("inf")
        if isinstance(step, fsm.WaitUntil):
            return step.at
        if isinstance(step, fsm.WaitEpoch):
            return self._beacon.time_of(step.epoch)
        if isinstance(step, fsm.RunTask):
            queued = await self._queue_task(number, step.phase)
            return None if queued else float("inf")
        if isinstance(step, fsm.Emit):
            await self._sectors.apply(number, step.event)
            return None
        if isinstance(step, fsm.DrawTicket | fsm.DrawSeed):
            tag = (RandomnessTag.SEAL_RANDOMNESS if isinstance(step, fsm.DrawTicket)
                   else RandomnessTag.INTERACTIVE_SEAL_CHALLENGE_SEED)
            value = self._beacon.draw(tag, step.epoch,
                                      miner_entropy(self._context.miner)).hex()
            event: Event = (fsm.TicketDrawn(value, step.epoch)
                            if isinstance(step, fsm.DrawTicket)
                            else fsm.SeedDrawn(value, step.epoch))
            await self._sectors.apply(number, event)
            return None
        self._busy.add(number)
        nursery.start_soon(self._background_step, number, step)
        return float("inf")

    async def _queue_task(self, number: int, phase: TaskKind) -> bool:
        """Create the sector's task for ``phase`` unless one is open; True if created
        (or, for a move to long-term storage that is not needed, the sector moved on)."""
        context = self._context
        async with context.lock:
            sector = self._sectors[number]
            if (sector.task_id is not None
                    or fsm.expected_task(sector, context.policy) is not phase):
                return False
            allow_to = None
            if isinstance(phase, StorageJob):
                stays = self._files.no_move_needed(number)
                if stays is not None:
                    await self._sectors.apply_locked(number, fsm.FilesStored(stays))
                    return True
                allow_to = self._files.move_groups(number)
            piece_url = None
            if phase is Phase.ADD_PIECE:
                piece = sector.pieces[sector.next_piece or 0]
                if piece.source is not None:
                    piece_url = self._files.piece_url(piece.source)

            def params(tx: Transaction) -> dict[str, Any]:
                c1 = (sector_store.get_blob(tx, number, C1_OUTPUT)
                      if phase is Phase.COMMIT2 else None)
                return pipeline.task_params(phase, context.miner, sector,
                                            piece_url=piece_url, c1_output=c1,
                                            allow_to=allow_to)

            task = await self._tasks.queue(sector, phase, params)
            if not self._sessions.offers(phase.task_type):
                _log.warning("no connected worker can run this task yet", sector=number,
                             task=task.task_id, task_type=phase.task_type)
            return True

    async def _background_step(self, number: int, step: fsm.Step) -> None:
        """Run a step that may take long outside the lock, then apply its event."""
        state = self._sectors[number].state
        try:
            try:
                event = await self._step_event(number, step)
            except Exception as exc:  # any failure becomes the step's failure event
                _log.warning("step failed", sector=number, step=type(step).__name__,
                             error=str(exc), exc_info=not isinstance(exc, SealAgentError))
                event = _failure_event(step, str(exc) if isinstance(exc, SealAgentError)
                                       else f"{type(exc).__name__}: {exc}")
            await self._sectors.apply(number, event, expect=state)
        finally:
            self._busy.discard(number)
            self._context.pipeline_wake.set()

    async def _step_event(self, number: int, step: fsm.Step) -> Event:
        sector = self._sectors[number]
        miner = self._context.miner
        if isinstance(step, fsm.SubmitPreCommit):
            expected = await trio.to_thread.run_sync(pipeline.expected_comm_d, sector.proof,
                                                     sector.pieces)
            if expected != sector.comm_d:
                return fsm.BadCommitment(f"CommD {sector.comm_d} does not match the pieces "
                                         f"({expected})")
            landed = await self._beacon.submit(ChainMessage(
                "precommit", miner, number,
                {"comm_r": sector.comm_r, "comm_d": sector.comm_d,
                 "ticket_epoch": sector.ticket_epoch}))
            return fsm.PreCommitLanded(landed)
        if isinstance(step, fsm.SubmitCommit):
            landed = await self._beacon.submit(ChainMessage(
                "commit", miner, number,
                {"proof": sector.seal_proof, "snark": sector.seal_proof is not None}))
            return fsm.CommitLanded(landed)
        if isinstance(step, fsm.CheckProof):
            c1 = await self._context.db.transaction(
                lambda tx: sector_store.get_blob(tx, number, C1_OUTPUT))
            valid, message = await trio.to_thread.run_sync(
                self._check_proof, sector, miner, step.snark, c1)
            return fsm.ProofChecked(valid, message)
        if isinstance(step, fsm.RemoveFiles):
            await self._files.remove(number)
            return fsm.FilesRemoved()
        raise ManagerError(f"no handler for step {step!r}")  # pragma: no cover


def _failure_event(step: fsm.Step, error: str) -> Event:
    """The event that reports a failed background step."""
    if isinstance(step, fsm.SubmitPreCommit | fsm.SubmitCommit):
        return fsm.MessageFailed(error)
    if isinstance(step, fsm.CheckProof):
        return fsm.ProofChecked(False, f"proof check failed: {error}")
    return fsm.RemoveFailedEvent(error)
