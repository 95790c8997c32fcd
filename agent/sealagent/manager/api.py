"""The manager's JSON-RPC methods (docs/protocol.md), one object per namespace.

Agents call ``Sealing.WorkerConnect``, ``WorkerHeartbeat``, ``RequestWindow``,
``TaskState`` and ``ReportResult``; the CLI calls the admin methods.  Every handler
validates its parameters and raises errors of the :mod:`sealagent.errors` tree, which the
dispatcher answers as JSON-RPC errors.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Final

import trio

from sealagent import __version__
from sealagent.errors import AuthError, ManagerError
from sealagent.manager import reports, views
from sealagent.manager.revocations import TokenRevocations
from sealagent.manager.service import ManagerService
from sealagent.manager.workers import WorkerReport
from sealagent.rpc.jsonrpc import MethodRegistry, exported
from sealagent.storage.paths import LocalPath, RepoStorage, init_path, open_path
from sealagent.web.auth import check_permission, create_token, verify_token

API_VERSION: Final = "0.1.0"


class SealingAPI:
    """``Sealing.*``: the agents' methods and the scheduler's admin views."""

    def __init__(self, service: ManagerService) -> None:
        self.service = service

    @exported("admin")
    async def worker_connect(self, info: dict[str, Any]) -> dict[str, str]:
        """Register or re-register an agent; returns its worker id and a new session."""
        return await self.service.connect(WorkerReport.from_json(info))

    @exported("admin")
    async def worker_heartbeat(self, session: str, info: dict[str, Any]) -> dict[str, Any]:
        """Fresh inventory from an agent; answers the tasks it must abort."""
        report = WorkerReport.from_json(info)
        return {"abort": await self.service.heartbeat(session, report)}

    @exported("admin")
    async def worker_redeclare(self, session: str, info: dict[str, Any]) -> dict[str, Any]:
        """An agent's paths with every sector file they hold (``storage redeclare
        --worker``); answers the sectors whose indexed files changed."""
        report = WorkerReport.from_json(info)
        return {"changed": await self.service.worker_redeclare(session, report)}

    @exported("admin")
    async def worker_detach_path(self, session: str, path_id: str,
                                 force: bool = False) -> dict[str, str]:
        """An agent stops using one of its paths (``storage detach --worker``): refused
        while it holds the only indexed copy of a sector's file, unless ``force``."""
        await self.service.worker_detach_path(session, path_id, force)
        return {"id": path_id}

    @exported("admin")
    async def request_window(self, session: str, timeout_s: float) -> dict[str, Any]:
        """Long-poll for a window of tasks (empty after ``timeout_s``, held at most
        ``[Sealing] WindowTimeout``)."""
        if timeout_s < 0:
            raise ManagerError("timeout_s cannot be negative")
        wait = min(float(timeout_s), self.service.config.sealing.window_timeout)
        return {"tasks": await self.service.request_window(session, wait)}

    @exported("admin")
    async def task_state(self, session: str, task_id: str, attempt: int,
                         state: str) -> dict[str, bool]:
        """An agent prepared or started a task."""
        await self.service.task_state(session, task_id, attempt, state)
        return {"ack": True}

    @exported("admin")
    async def report_result(self, session: str, report: dict[str, Any]) -> dict[str, bool]:
        """A task's result; acknowledged once it is on disk (idempotent)."""
        await self.service.report_result(session, report)
        return {"ack": True}

    @exported("admin")
    async def worker_leave(self, session: str) -> dict[str, bool]:
        """An agent stops: end its session now."""
        await self.service.leave(session)
        return {"ack": True}

    @exported("admin")
    async def storage_declare(self, session: str, sector: int,
                              files: dict[str, Any]) -> dict[str, bool]:
        """Files of ``sector`` an agent moved: ``{"declared": [...], "dropped": [...]}``
        of ``{path_id, file_type}``; acknowledged once the index is on disk."""
        await self.service.declare_files(session, sector, reports.parse_move(files))
        return {"ack": True}

    @exported("read")
    async def workers(self) -> list[dict[str, Any]]:
        """Connected agents with their resources, usage and task counts."""
        return views.workers_info(self.service)

    @exported("read")
    async def jobs(self) -> list[dict[str, Any]]:
        """Tasks given to agents: assigned, prepared, running, ret-wait."""
        return views.jobs(self.service)

    @exported("read")
    async def sched_diag(self) -> dict[str, Any]:
        """The scheduler's queue, open windows and workers."""
        return views.sched_diag(self.service)

    @exported("admin")
    async def abort(self, job_id: str, sched: bool = False) -> dict[str, Any]:
        """Abort a job by id prefix (``sched``: remove a queued task)."""
        return await self.service.abort(job_id, sched=sched)


class SectorsAPI:
    """``Sectors.*``: create, inspect and remove sectors."""

    def __init__(self, service: ManagerService) -> None:
        self.service = service

    @exported("admin")
    async def pledge(self) -> dict[str, int]:
        """Start a committed-capacity sector."""
        return {"number": await self.service.pledge()}

    @exported("admin")
    async def add_piece(self, path: str, cid: str, size: int) -> dict[str, int]:
        """Start a deal sector with the piece at ``path`` (CommP ``cid``, ``size`` bytes)."""
        return {"number": await self.service.add_piece(path, cid, size)}

    @exported("read")
    async def list(self) -> list[dict[str, Any]]:
        """Every sector with its state and why it waits."""
        service = self.service
        queued = service.sched.waiting_reasons(
            (s.task_id or "" for s in service.sectors.values()), service.view())
        return [views.sector_summary(service, s, queued)
                for _, s in sorted(service.sectors.items())]

    @exported("read")
    async def status(self, number: int, log: bool = False) -> dict[str, Any]:
        """One sector in full, with its event log when ``log``."""
        return await self.service.sector_status(number, log)

    @exported("read")
    async def check(self, number: int, slow: bool = False) -> dict[str, Any]:
        """Look at every stored copy of a sector's files: present, right size; with
        ``slow``, fresh challenges answered from the files and verified against CommR."""
        return await self.service.check_sector(number, slow)

    @exported("admin")
    async def remove(self, number: int) -> dict[str, int]:
        """Remove a sector and its files."""
        await self.service.remove_sector(number)
        return {"number": number}

    @exported("admin")
    async def unseal(self, number: int) -> dict[str, Any]:
        """Unseal a sealed sector unless an unsealed copy is stored (an Unseal task on an
        agent that can reach the sealed copy); answers :meth:`unseal_status`."""
        return await self.service.unseals.request(number)

    @exported("read")
    async def unseal_status(self, number: int) -> dict[str, Any]:
        """Where the sector's unsealing stands, and what a queued Unseal waits for."""
        return await self.service.unseals.status(number)

    @exported("admin")
    async def drop_unsealed(self, number: int) -> dict[str, Any]:
        """Delete every unsealed copy of a sealed sector (pieces are unsealed again when
        asked for)."""
        return {"number": number, "paths": await self.service.unseals.drop(number)}


class PiecesAPI:
    """``Pieces.*``: the deal pieces in sectors, and their bytes."""

    def __init__(self, service: ManagerService) -> None:
        self.service = service

    @exported("read")
    async def list(self) -> list[dict[str, Any]]:
        """Every deal piece: its sector, place, size and whether it is unsealed."""
        return self.service.unseals.pieces()

    @exported("read")
    async def locate(self, cid: str) -> dict[str, Any]:
        """The sector holding a deal piece, where in it, and its unsealing status."""
        return await self.service.unseals.piece(cid)

    @exported("read")
    async def read(self, cid: str, offset: int, length: int) -> dict[str, Any]:
        """Original bytes ``[offset, offset + length)`` of a deal piece (base64, at most
        1 MiB) from its sector's unsealed copy; check CommP over the whole piece.
        ``GET /piece/<cid>`` streams the same bytes (:mod:`.piece_route`)."""
        if isinstance(offset, bool) or isinstance(length, bool) \
                or not isinstance(offset, int) or not isinstance(length, int):
            raise ManagerError("offset and length must be integers")
        answer = await self.service.unseals.read(cid, offset, length)
        return {**answer, "data": base64.b64encode(answer["data"]).decode("ascii")}


class StorageAPI:
    """``Storage.*``: the manager's own storage paths and the index."""

    def __init__(self, service: ManagerService, repo_storage: RepoStorage | None) -> None:
        self.service = service
        self.repo_storage = repo_storage

    @exported("admin")
    async def attach(self, path: str, seal: bool = False, store: bool = False,
                     init: bool = False, weight: int = 10, max_storage: int = 0,
                     groups: list[str] | None = None,
                     allow_to: list[str] | None = None) -> dict[str, Any]:
        """Attach a directory of this host (``init`` makes it a storage path first, with
        the given weight, size limit, groups and the groups its sectors may go to)."""
        if init and not (seal or store):
            raise ManagerError("--init needs --seal and/or --store")

        def open_it() -> LocalPath:
            local = (init_path(path, can_seal=seal, can_store=store, weight=weight,
                               max_storage=max_storage, groups=groups or (),
                               allow_to=allow_to or ()) if init
                     else open_path(path))
            if self.repo_storage is not None:
                self.repo_storage.attach(local.root)
            return local

        local = await trio.to_thread.run_sync(open_it)
        await self.service.attach_local(local)
        return {"id": local.id, "path": str(local.root)}

    @exported("admin")
    async def detach(self, path: str, force: bool = False) -> dict[str, str]:
        """Stop using a storage path of this host (its files stay on disk); refused while
        it holds the only copy of a sector's file unless ``force``."""
        directory = Path(path)
        if not directory.is_absolute():
            raise ManagerError(f"give the manager an absolute path, not {path!r}")

        def forget(root: Path) -> None:
            if self.repo_storage is not None:
                self.repo_storage.detach(root)

        path_id = await self.service.detach_local(directory, force=force, forget=forget)
        return {"id": path_id, "path": str(directory)}

    @exported("admin")
    async def redeclare(self) -> dict[str, list[int]]:
        """Index exactly the sector files now in this host's paths."""
        return {"changed": await self.service.redeclare_local()}

    @exported("read")
    async def find(self, number: int) -> list[dict[str, Any]]:
        """Which paths, on which hosts, hold which files of a sector."""
        return views.sector_locations(self.service, number)

    @exported("read")
    async def list(self) -> list[dict[str, Any]]:
        """Every indexed path with its space, health and sector count."""
        return views.storage_info(self.service)


class AuthAPI:
    """``Auth.*``: tokens signed with the manager's secret, and their revocation."""

    def __init__(self, secret: bytes, revocations: TokenRevocations) -> None:
        self._secret = secret
        self.revocations = revocations

    @exported("admin")
    async def new(self, perms: list[str], expires_in: float | None = None) -> str:
        """A new token granting ``perms`` (valid ``expires_in`` seconds, if given)."""
        if not perms:
            raise AuthError("a token needs at least one permission")
        if expires_in is not None and expires_in < 1:
            raise ManagerError("a token's lifetime must be at least one second")
        return create_token(self._secret, [check_permission(p) for p in perms],
                            expires_in=expires_in)

    @exported("read")
    async def verify(self, token: str) -> list[str]:
        """The permissions ``token`` grants (AuthError when invalid, expired or revoked)."""
        return sorted(verify_token(self._secret, token, self.revocations.ids))

    @exported("admin")
    async def revoke(self, token_id: str) -> bool:
        """Revoke the token with this id (durably); False when it already was."""
        return await self.revocations.revoke(token_id)


class CommonAPI:
    """``Common.*``: what the manager is."""

    def __init__(self, service: ManagerService) -> None:
        self.service = service

    @exported("read")
    async def version(self) -> dict[str, Any]:
        """The sealagent version, the API version, the miner and its sector size."""
        return {"version": __version__, "api": API_VERSION,
                "miner": self.service.miner, "sector_size": self.service.proof.sector_size,
                "proof": self.service.proof.name}


def build_registry(service: ManagerService, secret: bytes, revocations: TokenRevocations,
                   repo_storage: RepoStorage | None = None) -> MethodRegistry:
    """Every method of the manager's API."""
    registry = MethodRegistry()
    registry.add_object("Sealing", SealingAPI(service))
    registry.add_object("Sectors", SectorsAPI(service))
    registry.add_object("Pieces", PiecesAPI(service))
    registry.add_object("Storage", StorageAPI(service, repo_storage))
    registry.add_object("Auth", AuthAPI(secret, revocations))
    registry.add_object("Common", CommonAPI(service))
    return registry
