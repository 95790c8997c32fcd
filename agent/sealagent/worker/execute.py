"""The executing window: run phases in child processes under resource accounting.

A task enters when it fits on top of what already runs (the same fit check as the
manager's scheduler, :mod:`sealagent.sched.fit`, against the hardware this agent
reported), is accounted while it runs, and leaves when its child exits.  A task that
fits nowhere even on an idle agent still runs once nothing else does, so that a table
override cannot wedge the agent.

Each phase runs as ``python .../guard.py <phase child>`` in a new process
group (its job, result and log files in a temporary directory under ``TMPDIR``), with
the thread limit the scheduler granted (``OMP_NUM_THREADS`` and friends,
:func:`sealagent.plugins.phase_environment`) and only its granted GPUs visible
(``CUDA_VISIBLE_DEVICES``, by UUID; none at all for a task without GPU).  The guard makes
the child die with the agent.  :meth:`Executor.abort` kills the group; the phase then
fails with :class:`~sealagent.errors.PhaseCancelledError`.  The child's progress reports
(:mod:`sealagent.phase_progress`) go into the agent's log as ``phase progress`` lines.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

import structlog
import trio

from sealagent.phase_progress import ProgressEvent
from sealagent.phases import PhaseRequest
from sealagent.plugins import PhaseJob, PhaseOutcome, Selection
from sealagent.plugins.progress_file import ProgressFileReader
from sealagent.protocol import Assignment
from sealagent.sched.fit import ActiveResources, Need
from sealagent.sched.resources import WorkerResources
from sealagent.worker import guard
from sealagent.worker.inventory import GpuDevice

GUARD_SCRIPT: Final = guard.__file__
"""Run as a script (not ``-m``): it then imports nothing of sealagent and starts fast."""
CLEANUP_WAIT: Final = 5.0
"""Seconds a phase's end waits for its working directory to be removed."""
PROGRESS_POLL_S: Final = 2.0
"""Seconds between two reads of a running phase's progress reports."""
PROGRESS_LOG_S: Final = 60.0
"""Seconds between two logged progress lines of a phase, stage ends aside."""
_log = structlog.get_logger(__name__)


async def _remove_workdir(job: PhaseJob) -> None:
    """Remove the job's working directory, even while the caller is being cancelled.

    The removal runs in a thread, shielded from cancellation; after :data:`CLEANUP_WAIT`
    the caller goes on and the thread finishes the removal by itself.
    """
    with trio.CancelScope(shield=True), trio.move_on_after(CLEANUP_WAIT):
        await trio.to_thread.run_sync(job.cleanup, abandon_on_cancel=True)


class _ProgressLog:
    """Puts a phase child's progress reports into the agent's log, with the task.

    Every stage's first report and its end are logged; in between, at most one report
    every :data:`PROGRESS_LOG_S` (the latest), so that an hour-long layer stays a few lines.
    """

    def __init__(self, reader: ProgressFileReader) -> None:
        """Log what ``reader`` reads."""
        self._reader = reader
        self._stage: str | None = None
        self._last = -math.inf

    async def follow(self) -> None:
        """Read and log the child's reports every :data:`PROGRESS_POLL_S` until cancelled."""
        while True:
            await trio.sleep(PROGRESS_POLL_S)
            await self.read()

    async def read(self) -> None:
        """Log the reports that came in since the last read."""
        events = await trio.to_thread.run_sync(self._reader.read)
        latest = None
        for event in events:
            if event.complete or event.stage != self._stage:
                self._log(event)
                latest = None
            else:
                latest = event
        if latest is not None and trio.current_time() - self._last >= PROGRESS_LOG_S:
            self._log(latest)

    def _log(self, event: ProgressEvent) -> None:
        """One log line for ``event``."""
        self._stage, self._last = event.stage, trio.current_time()
        _log.info("phase progress", stage=event.stage, done=event.done, total=event.total,
                  elapsed_s=round(event.elapsed_s, 1))


def resolve_need(assignment: Assignment, worker: WorkerResources) -> Need:
    """What ``assignment`` takes on this worker: its table entry, with the threads and GPU
    share the manager granted."""
    seal_task = assignment.seal_task_type
    need = Need.resolve(seal_task, worker.spec(seal_task.proof, seal_task.task_type), worker)
    return replace(need, threads=assignment.threads, gpu=assignment.gpu,
                   gpu_checked=assignment.gpu > 0 and worker.gpu_count > 0)


@dataclass
class GpuLedger:
    """How much of each GPU the running phases use; picks devices for a new phase."""

    devices: tuple[GpuDevice, ...]
    used: dict[str, float] = field(default_factory=dict)

    def take(self, share: float) -> list[GpuDevice]:
        """Devices for a phase needing ``share`` GPUs: the least used ones."""
        if share <= 0 or not self.devices:
            return []
        count = min(len(self.devices), max(1, math.ceil(share)))
        ranked = sorted(self.devices, key=lambda d: (self.used.get(d.uuid, 0.0), d.index))
        chosen = ranked[:count]
        for device in chosen:
            self.used[device.uuid] = self.used.get(device.uuid, 0.0) + share / count
        return chosen

    def give_back(self, devices: list[GpuDevice], share: float) -> None:
        """Release what :meth:`take` accounted."""
        for device in devices:
            self.used[device.uuid] = max(0.0, self.used.get(device.uuid, 0.0)
                                         - share / len(devices))


class _Running:
    """A phase process: how to kill it, and whether it was killed on purpose."""

    def __init__(self) -> None:
        self.process: trio.Process | None = None
        self.aborted = False

    def kill(self) -> None:
        """SIGKILL the guard's process group (the guard and the phase child)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


class Executor:
    """Runs phases for the agent, at most what the hardware it reported allows."""

    def __init__(self, worker: WorkerResources, selection: Selection, *,
                 gpus: tuple[GpuDevice, ...] = (), ignore_resources: bool = False,
                 env: Mapping[str, str] | None = None) -> None:
        """
        :param worker: the hardware the agent reported (the fit check's capacity).
        :param selection: the backends chosen by ``--plugin``.
        :param gpus: the GPUs this agent may hand out.
        :param ignore_resources: accept every task (MaxConcurrent still applies).
        :param env: extra environment for every phase's child process.

        :attr:`active` accounts the running phases; the preparing window shares its task
        counters, so ``MaxConcurrent`` counts a task once while it moves between windows.
        """
        self.worker = worker
        self.selection = selection
        self.ignore_resources = ignore_resources
        self.env = dict(env or {})
        self.active = ActiveResources()
        self.gpus = GpuLedger(gpus)
        self._running: dict[str, _Running] = {}
        self._accounted = 0
        self._freed = trio.Event()

    @property
    def running(self) -> list[str]:
        """Task ids of the phases running now."""
        return list(self._running)

    def abort(self, task_id: str) -> bool:
        """Kill the phase of ``task_id``; False when it is not running here."""
        running = self._running.get(task_id)
        if running is None:
            return False
        running.aborted = True
        running.kill()
        return True

    def _fits(self, assignment: Assignment, need: Need) -> bool:
        if not self._accounted:
            return True
        return self.active.can_handle(assignment.key, need, self.worker,
                                      self.ignore_resources)

    @contextlib.asynccontextmanager
    async def slot(self, assignment: Assignment) -> AsyncIterator[Need]:
        """Wait until ``assignment`` fits, account it while the body runs, then free it.

        Yields what the task was accounted with (its threads and GPU share).
        """
        need = resolve_need(assignment, self.worker)
        while not self._fits(assignment, need):
            await self._freed.wait()
        self.active.add(assignment.key, need, self.worker)
        self._accounted += 1
        try:
            yield need
        finally:
            self._accounted -= 1
            self.active.free(assignment.key, need)
            self._freed.set()
            self._freed = trio.Event()

    async def execute(self, assignment: Assignment, request: PhaseRequest,
                      need: Need) -> PhaseOutcome:
        """Run ``request`` in a child process now (inside :meth:`slot`).

        :raises PhaseFailedError: the phase failed or its child died.
        :raises PhaseCancelledError: the phase was aborted (:meth:`abort`).

        Cancelling the caller kills the child (and waits for it) before the
        cancellation propagates.
        """
        devices = self.gpus.take(need.granted_gpu)
        try:
            job = await trio.to_thread.run_sync(self._prepare_job, assignment, request,
                                                max(1, need.threads), devices)
            try:
                returncode, aborted = await self._run_child(assignment, job)
                return await trio.to_thread.run_sync(
                    lambda: job.collect(returncode, killed=aborted))
            finally:
                await _remove_workdir(job)
        finally:
            self.gpus.give_back(devices, need.granted_gpu)

    def _prepare_job(self, assignment: Assignment, request: PhaseRequest, threads: int,
                     devices: list[GpuDevice]) -> PhaseJob:
        return PhaseJob.prepare(request.phase, request, self.selection, threads=threads,
                                gpus=[d.uuid for d in devices], env=self.env)

    async def _run_child(self, assignment: Assignment, job: PhaseJob) -> tuple[int, bool]:
        """Start the guarded child, wait for it; returns (exit status, aborted)."""
        running = _Running()
        self._running[assignment.task_id] = running
        lifeline_read, lifeline_write = os.pipe()
        try:
            with job.log_path.open("wb") as log:
                running.process = await trio.lowlevel.open_process(
                    [sys.executable, GUARD_SCRIPT, *job.argv], env=job.env,
                    stdin=lifeline_read, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            os.close(lifeline_read)
            lifeline_read = -1
            _log.info("phase started", pid=running.process.pid, threads=job.env.get(
                "OMP_NUM_THREADS"), gpus=job.env.get("CUDA_VISIBLE_DEVICES") or None)
            progress = _ProgressLog(job.progress_reader())
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(progress.follow)
                    returncode = await running.process.wait()
                    nursery.cancel_scope.cancel()
                await progress.read()
            except BaseException:
                running.kill()
                with trio.CancelScope(shield=True):
                    await running.process.wait()
                raise
            return returncode, running.aborted
        finally:
            del self._running[assignment.task_id]
            for fd in (lifeline_read, lifeline_write):
                if fd >= 0:
                    os.close(fd)
