"""One task's way through the agent: window → preparing → executing → report.

:meth:`TaskFlow.handle` takes a task the manager assigned (or one resumed from the
journal) through

1. the preparing window (:mod:`~sealagent.worker.prepare`): its paths, its space, the
   files fetched from peers; Commit1, Commit2 and resumed tasks only get their paths;
   a move to long-term storage is done there and reported at once;
2. the executing window (:mod:`~sealagent.worker.execute`), where the journal records it
   and the manager hears it runs, then its child process;
3. the report, with the sector files now on this agent and the peer copies moved here,
   through the durable outbox.

Its log lines carry the task id, attempt, kind and sector.  A failure becomes a report
with Lotus' error code: 102 for missing space, 100 (temporary: the sector retries the
step) for an unreachable peer or a missing input file, 0 otherwise.  An abort kills the
phase or cancels the preparation and reports ``aborted``; a task handed back (the agent
stops before running it) is not reported at all, the manager queues it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import trio

from sealagent.errors import (
    NoSpaceError,
    PhaseCancelledError,
    RPCError,
    RPCTransportError,
    SealAgentError,
    SectorFileNotFoundError,
)
from sealagent.phases import Phase, PhaseRequest, UnsealRequest
from sealagent.protocol import Assignment, ErrorCode, FetchDone, Report, SectorFile
from sealagent.task_kinds import StorageJob
from sealagent.worker.execute import Executor
from sealagent.worker.journal import TaskJournal
from sealagent.worker.link import ManagerLink
from sealagent.worker.local_storage import LocalStorage
from sealagent.worker.prepare import Prepared, Preparer
from sealagent.worker.reporter import Reporter
from sealagent.worker.unseal_output import write_unsealed

_log = structlog.get_logger(__name__)


@dataclass
class HeldTask:
    """A task this agent holds, from its window to its report."""

    assignment: Assignment
    stage: str = "assigned"
    """``assigned``, ``preparing``, ``prepared`` or ``running``."""
    resumed: bool = False
    """Started by an earlier run of the agent (its files are here; no preparing)."""
    dropped: tuple[SectorFile, ...] = ()
    """Peer copies moved here while preparing (reported with the result)."""
    fetched: tuple[FetchDone, ...] = ()
    """The downloads of preparing (reported with the result)."""
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    aborted: bool = False
    handed_back: bool = False


@dataclass
class TaskFlow:
    """The parts a task goes through, and the tasks the agent holds."""

    storage: LocalStorage
    preparer: Preparer
    executor: Executor
    journal: TaskJournal
    reporter: Reporter
    link: ManagerLink
    work_dir: Path
    """Where deal pieces are downloaded for AddPiece."""
    tell_timeout: float
    """Seconds to spend telling the manager a task's state (it is only informative)."""
    held: dict[str, HeldTask] = field(default_factory=dict)
    released: trio.Event = field(default_factory=trio.Event)
    """Set (and replaced) each time a task leaves :attr:`held`."""

    def abort(self, task_id: str) -> bool:
        """Abort a held task (the manager's ``sealing abort``); False if not held."""
        held = self.held.get(task_id)
        if held is None:
            return False
        held.aborted = True
        _log.warning("aborting task", task_id=task_id)
        if not self.executor.abort(task_id):
            held.scope.cancel()
        return True

    def hand_back_unstarted(self) -> None:
        """Give up every task that is not executing yet (the agent stops)."""
        for held in self.held.values():
            if held.stage != "running":
                held.handed_back = True
                held.scope.cancel()

    async def handle(self, assignment: Assignment, left_window: trio.Event) -> None:
        """Take one held task to its report; ``left_window`` is set once it left its
        scheduling window (entered preparing, or executing for C1/C2)."""
        held = self.held[assignment.task_id]
        with _bound(assignment):
            report = None
            try:
                with held.scope:
                    report = await self._run(assignment, held, left_window)
            except Exception as exc:  # a bug must fail the task, not the agent
                _log.exception("task crashed")
                report = _failure(assignment, f"agent error: {type(exc).__name__}: {exc}")
            finally:
                left_window.set()
            if held.aborted:
                report = _failure(assignment, "aborted")
            if report is not None:
                with trio.CancelScope(shield=True):
                    declared = await trio.to_thread.run_sync(self.storage.declared,
                                                             assignment.sector)
                    report = dataclasses.replace(report.with_files(declared, held.dropped),
                                                 fetched=held.fetched)
                    await self.reporter.submit(report)
                    await trio.to_thread.run_sync(self.journal.finished, assignment)
                _log.info("task done" if report.ok else "task failed", error=report.error)
            elif held.handed_back:
                _log.info("task handed back")
            del self.held[assignment.task_id]
            self.released.set()
            self.released = trio.Event()

    async def _run(self, assignment: Assignment, held: HeldTask,
                   left_window: trio.Event) -> Report:
        try:
            async with contextlib.AsyncExitStack() as stack:
                preparing = contextlib.AsyncExitStack()
                stack.push_async_exit(preparing)
                if assignment.skips_preparing or held.resumed:
                    prepared = await self.preparer.locate(assignment)
                else:
                    await preparing.enter_async_context(self.preparer.slot(assignment))
                    left_window.set()
                    held.stage = "preparing"
                    if isinstance(assignment.phase, StorageJob):
                        return await self._store(assignment, held)
                    prepared = await self.preparer.prepare(assignment)
                    held.dropped = prepared.dropped
                    held.fetched = prepared.fetched
                    held.stage = "prepared"
                    await self._tell(assignment, "prepared")
                stack.callback(prepared.release)
                request = await self._request(assignment, prepared, stack)
                need = await stack.enter_async_context(self.executor.slot(assignment))
                left_window.set()
                await preparing.aclose()
                held.stage = "running"
                if not held.resumed:
                    await trio.to_thread.run_sync(self.journal.started, assignment,
                                                  held.dropped)
                await self._tell(assignment, "running")
                outcome = await self.executor.execute(assignment, request, need)
                if isinstance(request, UnsealRequest):
                    await trio.to_thread.run_sync(
                        write_unsealed, Path(request.output), Path(request.paths.unsealed),
                        assignment.proof.sector_size)
            _log.info("phase finished", backend=outcome.backend, wall_s=round(outcome.wall_s, 3))
            return Report(assignment.task_id, assignment.attempt, True, outcome.result.to_json())
        except PhaseCancelledError as exc:
            return _failure(assignment, str(exc))
        except NoSpaceError as exc:
            return _failure(assignment, str(exc), ErrorCode.NO_SPACE)
        except SectorFileNotFoundError as exc:
            held.dropped += await trio.to_thread.run_sync(self.storage.absent, assignment.sector,
                                                          assignment.phase.reads)
            return _failure(assignment, str(exc), ErrorCode.TEMPORARY)
        except RPCTransportError as exc:
            return _failure(assignment, str(exc), ErrorCode.TEMPORARY)
        except (SealAgentError, OSError) as exc:
            return _failure(assignment, str(exc))

    async def _store(self, assignment: Assignment, held: HeldTask) -> Report:
        """Move the sector's finalized files to long-term storage (in the preparing
        window, where downloads are limited); no phase runs."""
        held.stage = "running"
        await self._tell(assignment, "running")
        _log.info("move started")
        prepared = await self.preparer.prepare(assignment)
        prepared.release()
        held.dropped = prepared.dropped
        held.fetched = prepared.fetched
        assert prepared.moved is not None
        _log.info("files stored", path=prepared.moved.path_id, bytes=prepared.moved.size)
        return Report(assignment.task_id, assignment.attempt, True, prepared.moved.to_json())

    async def _request(self, assignment: Assignment, prepared: Prepared,
                       stack: contextlib.AsyncExitStack) -> PhaseRequest:
        """The phase request; an AddPiece's deal piece is downloaded first, an Unseal's
        output goes to a scratch file (:mod:`~sealagent.worker.unseal_output`)."""
        if assignment.phase is Phase.UNSEAL:
            output = self.work_dir / f"unseal-{assignment.key}"
            stack.callback(lambda: output.unlink(missing_ok=True))
            params = {**assignment.params, "output": str(output)}
            return dataclasses.replace(assignment, params=params).request(prepared.paths)
        if assignment.phase is not Phase.ADD_PIECE or "piece_url" not in assignment.params:
            return assignment.request(prepared.paths)
        params = dict(assignment.params)
        url = params.pop("piece_url")
        params["piece_file"] = None
        if url is not None:
            piece = self.work_dir / f"piece-{assignment.key}"
            await trio.to_thread.run_sync(lambda: piece.unlink(missing_ok=True))
            stack.callback(lambda: piece.unlink(missing_ok=True))
            await self.preparer.remote.fetch(str(url), piece)
            params["piece_file"] = str(piece)
        return dataclasses.replace(assignment, params=params).request(prepared.paths)

    async def _tell(self, assignment: Assignment, state: str) -> None:
        """Tell the manager the task's state (``sealing jobs``); failures only logged."""
        try:
            with trio.move_on_after(self.tell_timeout):
                await self.link.call("Sealing.TaskState", assignment.task_id,
                                     assignment.attempt, state)
        except RPCError as exc:
            _log.warning("task state not delivered", state=state, error=str(exc))


def _failure(assignment: Assignment, error: str, code: int = ErrorCode.UNKNOWN) -> Report:
    return Report(assignment.task_id, assignment.attempt, False, error=error, code=code)


@contextlib.contextmanager
def _bound(assignment: Assignment) -> Iterator[None]:
    """Log lines inside carry the task's id, attempt, kind and sector."""
    with structlog.contextvars.bound_contextvars(
            task_id=assignment.task_id, attempt=assignment.attempt,
            task=assignment.phase.short, sector=assignment.sector.number):
        yield
