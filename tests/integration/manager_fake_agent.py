"""A small agent for the manager's integration tests.

It speaks the real protocol over HTTP (docs/protocol.md: connect, heartbeats, two
long-polled windows, task states, result reports retried until acknowledged), keeps one
local storage path served on its own ``/remote``, and runs each phase in-process with the
``cpu`` backend.  ``executions`` counts the phases it actually ran, per (sector, phase),
so a test can prove that nothing was sealed twice.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from sealagent.errors import RPCError, RPCTransportError, SessionError
from sealagent.phases import Phase, SectorPaths, SectorRef
from sealagent.plugins import PluginSet, run_phase
from sealagent.rpc.asgi import RPCApp
from sealagent.rpc.client import RPCClient
from sealagent.rpc.jsonrpc import Dispatcher, MethodRegistry
from sealagent.rpc.server import start_server
from sealagent.storage.fetch import RemoteClient
from sealagent.storage.paths import LocalPath, init_path
from sealagent.storage.remote import RemoteHandler
from sealagent.vocab.registry import resolve_proof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import TaskType
from sealagent.web.auth import delegated_verifier

SEALING_TASKS = (TaskType.ADD_PIECE, TaskType.PRECOMMIT1, TaskType.PRECOMMIT2,
                 TaskType.COMMIT1, TaskType.FINALIZE, TaskType.FETCH)
RETRY = 0.1


@dataclass
class Held:
    """A task the agent holds: received, running, or with an unacknowledged report."""

    assignment: dict[str, Any]
    report: dict[str, Any] | None = None


@dataclass
class FakeAgent:
    """One agent; ``await nursery.start(agent.run)`` connects it and keeps it working."""

    name: str
    manager_url: str
    token: str
    root: Path
    tasks: Iterable[TaskType] = SEALING_TASKS
    cpus: int = 4
    heartbeat_s: float = 0.3
    executions: Counter[tuple[int, str]] = field(default_factory=Counter)
    aborted: list[str] = field(default_factory=list)
    held: dict[str, Held] = field(default_factory=dict)
    before_report: Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]] | None = None
    """Awaited with each assignment and its report before the report is sent."""
    session: str | None = None
    url: str = ""
    path: LocalPath | None = None
    _connecting: trio.Lock = field(default_factory=trio.Lock)

    def info(self) -> dict[str, Any]:
        """The WorkerInfo this agent sends."""
        assert self.path is not None
        return {
            "worker_id": f"fake-{self.name}", "name": self.name,
            "hostname": f"{self.name}.{socket.gethostname()}",
            "url": self.url, "tasks": [t.value for t in self.tasks],
            "resources": {"cpus": self.cpus, "mem_physical": 64 << 30, "mem_used": 1 << 30,
                          "mem_swap": 0, "mem_swap_used": 0, "gpus": [], "table": None},
            "paths": [{"meta": self.path.meta.to_json(), "stat": self.path.stat().to_json()}],
            "plugins": {t.value: "cpu" for t in self.tasks},
            "running": [{"task_id": h.assignment["task_id"],
                         "attempt": h.assignment["attempt"]} for h in self.held.values()],
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Serve ``/remote``, connect, and run windows, heartbeats and tasks forever."""
        self.path = init_path(self.root, can_seal=True, can_store=True)
        work_send, work_recv = trio.open_memory_channel[dict[str, Any]](100)
        async with RPCClient(self.manager_url, self.token, timeout=10.0) as client, \
                trio.open_nursery() as nursery:
            verify = delegated_verifier(lambda token: client.call("Auth.Verify", [token]))
            remote = RemoteHandler(lambda: [self.path] if self.path else [], verify)
            app = RPCApp(Dispatcher(MethodRegistry()), verify)
            app.mount("/remote", remote)
            server = await start_server(nursery, app, "127.0.0.1:0")
            self.url = server.url
            await self._connect(client)
            for _ in range(2):
                nursery.start_soon(self._window_loop, client, work_send)
            nursery.start_soon(self._heartbeat_loop, client)
            nursery.start_soon(self._runner, client, work_recv)
            task_status.started()

    async def _connect(self, client: RPCClient, stale: str | None = None) -> None:
        """(Re)register, unless another caller already replaced the ``stale`` session."""
        async with self._connecting:
            while self.session == stale:
                try:
                    answer = await client.call("Sealing.WorkerConnect", [self.info()])
                except RPCTransportError:
                    await trio.sleep(RETRY)
                    continue
                self.session = answer["session"]

    async def _call(self, client: RPCClient, method: str, *params: Any,
                    limit: float | None = None) -> Any:
        """Call with the session; reconnect on an unknown session or a lost manager."""
        while True:
            session = self.session
            try:
                return await client.call(method, [session, *params], timeout=limit)
            except SessionError:
                await self._connect(client, session)
            except RPCTransportError:
                await trio.sleep(RETRY)

    async def _window_loop(self, client: RPCClient,
                           work: trio.MemorySendChannel[dict[str, Any]]) -> None:
        while True:
            answer = await self._call(client, "Sealing.RequestWindow", 1.0, limit=5.0)
            for assignment in answer["tasks"]:
                self.held[assignment["task_id"]] = Held(assignment)
                await work.send(assignment)

    async def _heartbeat_loop(self, client: RPCClient) -> None:
        while True:
            await trio.sleep(self.heartbeat_s)
            answer = await self._call(client, "Sealing.WorkerHeartbeat", self.info())
            self.aborted.extend(answer["abort"])

    async def _runner(self, client: RPCClient,
                      work: trio.MemoryReceiveChannel[dict[str, Any]]) -> None:
        async for assignment in work:
            task_id = assignment["task_id"]
            await self._call(client, "Sealing.TaskState", task_id, assignment["attempt"],
                             "running")
            report = await self._execute(assignment)
            self.held[task_id].report = report
            if self.before_report is not None:
                await self.before_report(assignment, report)
            await self._call(client, "Sealing.ReportResult", report)
            self.held.pop(task_id, None)

    async def _execute(self, assignment: dict[str, Any]) -> dict[str, Any]:
        """Fetch the inputs, run the phase with ``cpu``, describe the result."""
        assert self.path is not None
        phase = Phase(assignment["task_type"])
        sector = SectorID(assignment["sector"]["miner"], assignment["sector"]["number"])
        proof = resolve_proof(assignment["proof"])
        paths = SectorPaths.under(self.path.root, SectorRef(sector.miner, sector.number,
                                                             proof.name))
        base = {"task_id": assignment["task_id"], "attempt": assignment["attempt"]}
        try:
            async with RemoteClient(self.token) as remote:
                for item in assignment["fetch"]:
                    dest = self.path.sector_path(FileType.parse(item["file_type"]), sector)
                    await remote.fetch(item["url"], dest)
                params = dict(assignment["params"])
                if "piece_url" in params:
                    url = params.pop("piece_url")
                    params["piece_file"] = None
                    if url is not None:
                        piece = self.root / f"piece-{assignment['task_id']}"
                        await remote.fetch(url, piece)
                        params["piece_file"] = str(piece)
            params["paths"] = paths.to_json()
            request = phase.request_type.from_json(params)
            selection = PluginSet.load(autoload=False).select([])
            self.executions[(sector.number, phase.short)] += 1
            run = await trio.to_thread.run_sync(run_phase, phase, request, selection)
        except (RPCError, OSError, ValueError) as exc:
            return {**base, "ok": False, "result": None, "error": str(exc), "code": 0,
                    "declared": []}
        declared = [{"path_id": self.path.id, "file_type": t.dir_name}
                    for t in (FileType.UNSEALED, FileType.SEALED, FileType.CACHE)
                    if self.path.has(t, sector)]
        return {**base, "ok": True, "result": run.result.to_json(), "error": None,
                "code": 0, "declared": declared}
