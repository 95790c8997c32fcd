"""The agent (Lotus' ``lotus-worker``): one Trio process per sealing machine.

:func:`run_agent` owns the root nursery.  In order, it

1. opens the repo (taking its lock), the storage paths, the outbox and the journal;
2. measures the host and chooses the backends (``--plugin``, ``cpu`` as the fallback);
3. serves its API and ``/remote`` (its own sector files) when it has a listen address;
4. registers with the manager, listing the tasks it still holds from a previous run;
5. runs, side by side: heartbeats (fresh inventory, abort requests), the reporter (the
   outbox), the two scheduling windows, and one task per assignment (preparing window →
   executing window → report), plus the tasks it resumes from its journal.

A task the agent was running when it died (``kill -9``, power cut) is in its journal:
the restarted agent reports it as running and runs it again on the same files, so a
PreCommit1 resumes from its last complete layer instead of starting over elsewhere.

Stopping (:meth:`Agent.stop`, SIGTERM/SIGINT in ``sealagent run``) is graceful: no new
window is asked for, tasks that have not started executing are handed back (the agent
re-registers without them, so the manager queues them again at once), running phases
get ``stop_grace`` seconds to finish, and the results go out.  Phases still running then
are killed but stay in the journal, to resume on the next start.  :meth:`Agent.kill`
skips the waiting.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Final

import httpx
import structlog
import trio

from sealagent.errors import AuthError, ConfigError, RPCError, RPCTransportError, SealAgentError
from sealagent.nurseries import lone_error_unwrapped
from sealagent.phases import Phase
from sealagent.plugins import PluginSet, Selection, default_plugins
from sealagent.protocol import Assignment, FileMove, SectorFile
from sealagent.rpc.asgi import RPCApp
from sealagent.rpc.client import RPCClient
from sealagent.rpc.jsonrpc import Dispatcher, MethodRegistry
from sealagent.rpc.netaddr import is_wildcard, route_source
from sealagent.rpc.server import start_server
from sealagent.sched.resources import parse_resource_env
from sealagent.storage.fetch import RemoteClient
from sealagent.storage.remote import RemoteHandler
from sealagent.task_kinds import STORAGE_TASK_TYPES
from sealagent.vocab.tasks import TASK_TYPES_BY_ORDER, TaskType
from sealagent.web.auth import APIInfo, delegated_verifier, parse_api_info
from sealagent.worker.api import AgentAPI
from sealagent.worker.config import ALWAYS_ON as ALWAYS_ON
from sealagent.worker.config import OPTIONAL_TASKS as OPTIONAL_TASKS
from sealagent.worker.config import AgentConfig as AgentConfig
from sealagent.worker.execute import Executor
from sealagent.worker.inventory import Inventory, nvml_devices, take_inventory
from sealagent.worker.journal import TaskJournal
from sealagent.worker.link import ManagerLink
from sealagent.worker.local_storage import LocalStorage
from sealagent.worker.metrics import AgentMetrics, AgentSnapshot
from sealagent.worker.outbox import Outbox
from sealagent.worker.prepare import Preparer
from sealagent.worker.repo import WorkerRepo
from sealagent.worker.reporter import Reporter
from sealagent.worker.task_flow import HeldTask, TaskFlow
from sealagent.worker.windows import WindowLoop

REPORT_FLUSH_TIMEOUT: Final = 10.0
"""Seconds a stopping agent waits for its last results to be acknowledged."""

_log = structlog.get_logger(__name__)


class Agent:
    """One agent; see the module docstring.  Start it with :meth:`run`."""

    def __init__(self, config: AgentConfig, *, plugins: PluginSet | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """
        :param plugins: the loaded backends (default: this process's plugins).
        :param transport: an httpx transport for the manager and ``/remote`` (tests).
        """
        self.config = config
        self.repo = WorkerRepo(config.repo)
        self.plugins = plugins
        self.transport = transport
        self.enabled: set[TaskType] = set(config.task_types)
        self.url = config.url or ""
        self._stopping = trio.Event()
        self._killed = False
        self._registered = False
        self._cancel_all = trio.CancelScope()
        self._tasks_nursery: trio.Nursery | None = None
        self.finished = trio.Event()
        """Set once :meth:`run` returned (or raised)."""
        self.metrics = AgentMetrics(self._metrics_snapshot)
        # Set up by run():
        self.identity: str
        """The worker id kept in the repo (:meth:`WorkerRepo.identity`)."""
        self.storage: LocalStorage
        self.selection: Selection
        self.inventory: Inventory
        self.outbox: Outbox
        self.journal: TaskJournal
        self.executor: Executor
        self.preparer: Preparer
        self.link: ManagerLink
        self.reporter: Reporter
        self.windows: WindowLoop
        self.flow: TaskFlow

    # ----------------------------------------------------------------- control

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` or :meth:`kill` was called."""
        return self._stopping.is_set()

    @property
    def registered(self) -> bool:
        """True once the agent registered with the manager."""
        return self._registered

    def stop(self) -> None:
        """Stop gracefully (see the module docstring); returns at once."""
        self._stopping.set()

    def kill(self) -> None:
        """Stop now: cancel everything, kill the phases (they stay in the journal)."""
        self._killed = True
        self._stopping.set()
        self._cancel_all.cancel()

    def enable(self, task_type: TaskType) -> None:
        """Take tasks of ``task_type`` again (from the next heartbeat on)."""
        self._check_toggle(task_type)
        self.enabled.add(task_type)

    def disable(self, task_type: TaskType) -> None:
        """Take no new tasks of ``task_type``; tasks already here are unaffected."""
        self._check_toggle(task_type)
        self.enabled.discard(task_type)

    @staticmethod
    def _check_toggle(task_type: TaskType) -> None:
        if task_type not in OPTIONAL_TASKS:
            names = " ".join(t.short for t in TASK_TYPES_BY_ORDER if t in OPTIONAL_TASKS)
            raise ConfigError(f"{task_type.short} cannot be enabled or disabled; "
                              f"choose one of {names}")

    @property
    def held(self) -> dict[str, HeldTask]:
        """The tasks this agent holds, by task id."""
        return self.flow.held

    def abort(self, task_id: str) -> bool:
        """Abort a held task (the manager's ``sealing abort``); False if not held."""
        return self.flow.abort(task_id)

    # ----------------------------------------------------------------- reports

    def task_types(self) -> list[str]:
        """The task types this agent accepts now: enabled and runnable by a backend (or,
        for a storage job such as the move to long-term storage, by the agent itself)."""
        out = []
        for task_type in TASK_TYPES_BY_ORDER:
            if task_type not in self.enabled:
                continue
            if task_type in STORAGE_TASK_TYPES:
                out.append(task_type.value)
                continue
            try:
                self.selection.candidates(Phase(task_type.value))
            except (SealAgentError, ValueError):
                continue
            out.append(task_type.value)
        return out

    def backends(self) -> dict[str, str]:
        """The first-choice backend of each phase that has one."""
        return {phase.task_type: chain[0]
                for phase, chain in self.selection.chains.items() if chain}

    async def worker_info(self, with_sectors: bool = False) -> dict[str, Any]:
        """The WorkerInfo object of the protocol, measured now; ``with_sectors`` (as the
        agent connects) lists every sector file of each path, for the storage index."""
        inventory = await trio.to_thread.run_sync(self._measure)
        paths = await trio.to_thread.run_sync(self._path_reports, with_sectors)
        held = {(h.assignment.task_id, h.assignment.attempt) for h in self.held.values()
                if not h.handed_back}
        pending = await trio.to_thread.run_sync(self.outbox.pending)
        held |= {(r.task_id, r.attempt) for r in pending}
        return {"worker_id": self.identity, "name": self.config.name,
                "hostname": self.config.name, "url": self.url,
                "machine": inventory.machine, "cpu_set": list(inventory.cpu_set),
                "tasks": [] if self._stopping.is_set() else self.task_types(),
                "resources": inventory.resources.to_json(), "paths": paths,
                "plugins": self.backends(),
                "running": [{"task_id": t, "attempt": a} for t, a in sorted(held)]}

    def _measure(self) -> Inventory:
        return take_inventory(no_swap=self.config.no_swap, environ=self.config.environ,
                              table=self.inventory.resources.table,
                              devices=self.inventory.gpus)

    def _path_reports(self, with_sectors: bool = False) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for path in self.storage.paths():
            try:
                report: dict[str, Any] = {"meta": path.meta.to_json(),
                                          "stat": path.stat().to_json(), "error": None}
            except SealAgentError as exc:
                report = {"meta": path.meta.to_json(), "stat": None, "error": str(exc)}
            if with_sectors:
                report["sectors"] = {sector.name: list(types.names)
                                     for sector, types in path.sectors().items()}
            out.append(report)
        return out

    def status(self) -> dict[str, Any]:
        """What ``sealagent info`` shows about this agent."""
        res = self.inventory.resources
        held = [{"task_id": h.assignment.task_id, "attempt": h.assignment.attempt,
                 "task_type": h.assignment.phase.task_type,
                 "sector": h.assignment.sector.number, "stage": h.stage}
                for h in self.held.values()]
        fetching = {task: {"file_type": p.file_type, "done": p.done, "total": p.total}
                    for task, p in self.preparer.progress.items()}
        return {"name": self.config.name, "url": self.url, "worker_id": self.link.worker_id,
                "session": self.link.session, "enabled": not self._stopping.is_set(),
                "tasks": self.task_types(), "plugins": self.backends(),
                "skipped_plugins": dict(self.selection.skipped),
                "resources": {k: v for k, v in res.to_json().items() if k != "table"},
                "paths": self._path_reports(), "held": held, "fetching": fetching,
                "open_windows": self.windows.open_requests}

    # ----------------------------------------------------------------- running

    async def run(self, *, task_status: trio.TaskStatus[Agent] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Run the agent until it is stopped; ``task_status.started(self)`` once
        registered with the manager.

        :raises AuthError: the manager refused the token.
        :raises ConfigError: the repo is in use, a flag or override is invalid.
        :raises PluginNotFoundError: a ``--plugin`` name is not installed.
        """
        config = self.config
        await trio.to_thread.run_sync(
            lambda: self.repo.init(local_storage=config.local_storage))
        lock = self.repo.lock()
        try:
            await self._open()
            async with self._clients() as (client, remote):
                self.link = ManagerLink(client, self.worker_info)
                self.preparer = Preparer(self.storage, remote, self.inventory.resources,
                                         counters=self.executor.active, scratch=self.repo.work,
                                         announce=self._declare_moved,
                                         ignore_resources=config.ignore_resources,
                                         observe_fetch=self.metrics.observe_fetch)
                self.reporter = Reporter(self.link, self.outbox)
                self.windows = WindowLoop(self.link, self._dispatch, windows=config.windows,
                                          wait=config.window_wait)
                self.flow = TaskFlow(self.storage, self.preparer, self.executor, self.journal,
                                     self.reporter, self.link, self.repo.work,
                                     tell_timeout=config.heartbeat_interval)
                with self._cancel_all:
                    await self._serve_and_work(task_status)
        finally:
            lock.close()
            self.finished.set()

    async def _open(self) -> None:
        config = self.config
        self.identity = await trio.to_thread.run_sync(self.repo.identity)
        table = parse_resource_env(config.environ)
        storage_repo = config.storage_repo or config.repo
        self.storage = await trio.to_thread.run_sync(LocalStorage.open, storage_repo)
        self.outbox = Outbox(self.repo.outbox)
        self.journal = TaskJournal(self.repo.journal)
        if self.plugins is None:
            self.plugins = await trio.to_thread.run_sync(default_plugins)
        self.selection = self.plugins.select(config.plugins)
        for name, reason in self.selection.skipped.items():
            _log.warning("plugin unavailable, falling back", plugin=name, reason=reason)
        await self._warm_plugins()
        devices = await trio.to_thread.run_sync(nvml_devices)
        self.inventory = await trio.to_thread.run_sync(lambda: take_inventory(
            no_swap=config.no_swap, environ=config.environ, table=table, devices=devices))
        self.executor = Executor(self.inventory.resources, self.selection,
                                 gpus=self.inventory.gpus,
                                 ignore_resources=config.ignore_resources,
                                 env=config.phase_env)
        res = self.inventory.resources
        _log.info("host", cpus=res.cpus, memory=res.mem_physical, swap=res.mem_swap,
                  gpus=[g.name for g in res.gpus], backends=self.backends())

    async def _warm_plugins(self) -> None:
        """Compile or load the chosen backends' kernels before the first window opens.

        A backend that fails to warm is logged; its phases then compile on first use.
        """
        plugins = self.selection.plugins
        for name in self.selection.runnable:

            def progress(line: str, name: str = name) -> None:
                _log.info("warming plugin", plugin=name, step=line)

            try:
                warmed = await trio.to_thread.run_sync(plugins.warm, name, progress)
            except SealAgentError as exc:
                _log.warning("plugin failed to warm", plugin=name, error=str(exc))
            else:
                if warmed:
                    _log.info("plugin warm", plugin=name)

    @contextlib.asynccontextmanager
    async def _clients(self) -> AsyncIterator[tuple[RPCClient, RemoteClient]]:
        info = self.config.api_info
        limiter = trio.CapacityLimiter(self.config.parallel_fetch_limit)
        client = RPCClient(info.url, info.token, transport=self.transport)
        remote = RemoteClient(info.token, limiter=limiter, transport=self.transport)
        async with client, remote:
            yield client, remote

    async def _serve_and_work(self, task_status: trio.TaskStatus[Agent]) -> None:
        async with trio.open_nursery() as server_nursery:
            server = None
            if self.config.listen is not None:
                server = await start_server(server_nursery, self._app(), self.config.listen)
                self.url = self.config.url or advertised_url(server.url, self.config.api_info)
                await trio.to_thread.run_sync(
                    self.repo.write_api, parse_api_info(f"{self.config.api_info.token}:"
                                                        f"{self.url}"))
            try:
                await self._work(task_status)
            finally:
                if server is not None:
                    server.stop()
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(self.repo.clear_api)

    async def _work(self, task_status: trio.TaskStatus[Agent]) -> None:
        resumed = await trio.to_thread.run_sync(self._unfinished)
        for assignment, dropped in resumed:
            self.held[assignment.task_id] = HeldTask(assignment, "running", resumed=True,
                                                     dropped=dropped)
        await self.link.connect()
        self._registered = True
        task_status.started(self)
        async with trio.open_nursery() as background:
            background.start_soon(self.link.run_heartbeats, self.config.heartbeat_interval,
                                  self._on_abort)
            background.start_soon(self.reporter.run)
            async with trio.open_nursery() as tasks:
                self._tasks_nursery = tasks
                for assignment, _ in resumed:
                    _log.info("resuming task", task_id=assignment.task_id,
                              task=assignment.phase.short, sector=assignment.sector.number)
                    tasks.start_soon(self.flow.handle, assignment, trio.Event())
                with trio.CancelScope() as windows_scope:
                    background.start_soon(self._watch_stop, windows_scope)
                    await self.windows.run()
                await self._wind_down(tasks)
            await self._flush_reports()
            background.cancel_scope.cancel()
        await self._leave()

    async def _watch_stop(self, windows_scope: trio.CancelScope) -> None:
        await self._stopping.wait()
        _log.info("stopping: no new windows")
        windows_scope.cancel()

    def _unfinished(self) -> list[tuple[Assignment, tuple[SectorFile, ...]]]:
        """Journal entries without a stored result: the tasks to run again."""
        out = []
        for assignment, dropped in self.journal.unfinished():
            if self.outbox.has(assignment.task_id, assignment.attempt):
                self.journal.finished(assignment)
            else:
                out.append((assignment, dropped))
        return out

    def _app(self) -> RPCApp:
        verify = delegated_verifier(self._ask_manager_about, own=self.config.api_info.token)
        registry = MethodRegistry()
        registry.add_object("Worker", AgentAPI(self))
        app = RPCApp(Dispatcher(registry), verify)
        app.mount("/remote", RemoteHandler(self.storage.paths, verify))
        app.mount("/debug/metrics", self.metrics)
        return app

    def _metrics_snapshot(self) -> AgentSnapshot:
        """What ``/debug/metrics`` reports."""
        tasks: dict[tuple[str, ...], int] = {}
        for held in self.held.values():
            key = (held.assignment.phase.task_type.value, held.stage)
            tasks[key] = tasks.get(key, 0) + 1
        paths = {}
        for path in self.storage.paths():
            try:
                stat = path.stat()
            except SealAgentError:
                continue
            paths[path.meta.id] = (stat.capacity, stat.available)
        return AgentSnapshot(not self._stopping.is_set(), tasks, paths)

    async def detach_path(self, directory: Path, *, force: bool) -> str:
        """``storage detach --worker``: the manager drops the path from its index (refused
        while it holds the only copy of a sector's file, unless ``force``), then this agent
        stops using and serving it.  Returns its id."""
        path = await trio.to_thread.run_sync(self.storage.at, directory)
        await self.link.call("Sealing.WorkerDetachPath", path.id, force)
        await trio.to_thread.run_sync(self.storage.detach, path)
        _log.warning("storage path detached", path=path.id, directory=str(path.root))
        return path.id

    async def redeclare(self) -> list[int]:
        """``storage redeclare --worker``: the manager's index holds exactly the sector
        files now in this agent's paths; returns the sectors whose files changed."""
        answer = await self.link.call("Sealing.WorkerRedeclare", await self.worker_info(True))
        changed = answer.get("changed") if isinstance(answer, dict) else None
        if not isinstance(changed, list):
            raise RPCTransportError(f"malformed WorkerRedeclare answer: {answer!r}")
        return [int(n) for n in changed]

    async def _declare_moved(self, assignment: Assignment, declared: Sequence[SectorFile],
                             dropped: Sequence[SectorFile]) -> None:
        """Tell the manager about moved files (``Sealing.StorageDeclare``)."""
        move = FileMove(tuple(declared), tuple(dropped))
        await self.link.call("Sealing.StorageDeclare", assignment.sector.number,
                             move.to_json(), timeout=self.config.heartbeat_interval * 4)

    async def _ask_manager_about(self, token: str) -> list[str]:
        """The permissions the manager says ``token`` grants (AuthError if none)."""
        info = self.config.api_info
        async with RPCClient(info.url, info.token, transport=self.transport,
                             timeout=self.config.heartbeat_interval) as client:
            answer = await client.call("Auth.Verify", [token])
        if not isinstance(answer, list) or not all(isinstance(p, str) for p in answer):
            raise AuthError("the manager's answer about a token is not a permission list")
        return answer

    async def _wind_down(self, tasks: trio.Nursery) -> None:
        """Hand back what has not started; give running phases ``stop_grace`` seconds."""
        self.flow.hand_back_unstarted()
        with contextlib.suppress(RPCError):
            with trio.move_on_after(self.config.heartbeat_interval * 2):
                await self.link.connect()  # re-register without them: requeued at once
        running = [h.assignment.task_id for h in self.held.values() if not h.handed_back]
        if running and not self._killed:
            _log.info("waiting for running phases", tasks=running,
                      grace_s=self.config.stop_grace)
            with trio.move_on_after(self.config.stop_grace):
                while any(not h.handed_back for h in self.held.values()):
                    await self.flow.released.wait()
        if self.held:
            _log.warning("killing phases still running; they resume on the next start",
                         tasks=list(self.held))
        tasks.cancel_scope.cancel()

    async def _flush_reports(self) -> None:
        if self._killed:
            return
        with trio.move_on_after(REPORT_FLUSH_TIMEOUT) as scope:
            await self.reporter.wait_delivered()
        if scope.cancelled_caught:
            _log.warning("results kept in the outbox for the next start",
                         pending=len(self.outbox))

    async def _leave(self) -> None:
        """Tell the manager this agent is gone (``Sealing.WorkerLeave``), so that its
        unfinished tasks show ``ret-wait`` at once rather than ``running`` until the
        manager's ``WorkerTimeout``."""
        if self._killed:
            return
        with contextlib.suppress(RPCError), trio.move_on_after(self.config.heartbeat_interval):
            await self.link.call("Sealing.WorkerLeave")

    def _on_abort(self, task_id: str) -> None:
        if not self.abort(task_id):
            _log.info("abort for a task not held here", task_id=task_id)

    # ----------------------------------------------------------------- one task

    async def _dispatch(self, tasks: Sequence[Assignment]) -> None:
        """Start a handler per task; return once all of them left the window."""
        assert self._tasks_nursery is not None
        left = []
        for assignment in tasks:
            if assignment.task_id in self.held:
                _log.warning("task already held, ignored", task_id=assignment.task_id)
                continue
            self.held[assignment.task_id] = HeldTask(assignment)
            event = trio.Event()
            left.append(event)
            self._tasks_nursery.start_soon(self.flow.handle, assignment, event)
        for event in left:
            await event.wait()


def advertised_url(bound_url: str, manager: APIInfo) -> str:
    """The URL peers use: the bound one, or for a wildcard bind the local address that
    routes to the manager (Lotus dials the miner to learn it)."""
    scheme, _, rest = bound_url.partition("://")
    host, _, port = rest.rpartition(":")
    if not is_wildcard(host):
        return bound_url
    local = route_source(manager.host, manager.port) or "127.0.0.1"
    return f"{scheme}://{f'[{local}]' if ':' in local else local}:{port}"


async def run_agent(config: AgentConfig, *, plugins: PluginSet | None = None,
                    transport: httpx.AsyncBaseTransport | None = None,
                    task_status: trio.TaskStatus[Agent] = trio.TASK_STATUS_IGNORED) -> None:
    """Run an agent until it is stopped (see :class:`Agent`).

    Start it with ``agent = await nursery.start(run_agent, config)``; the agent is
    reported once it registered with the manager, and ``agent.stop()`` ends it.

    :raises AuthError: the manager refused the token.
    """
    with lone_error_unwrapped():
        await Agent(config, plugins=plugins, transport=transport).run(task_status=task_status)
