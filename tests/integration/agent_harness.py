"""A manager and agents on loopback for the agent tests: repos, configs, waiting helpers."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import trio

from sealagent.manager.config import (
    APIConfig,
    ManagerConfig,
    MinerConfig,
    ProvingConfig,
    SealingConfig,
    StorageConfig,
)
from sealagent.manager.repo import MinerRepo
from sealagent.manager.server import RunningManager
from sealagent.manager.tasks import TaskRecord, get_task, sector_tasks
from sealagent.rpc.client import RPCClient, open_rpc_client
from sealagent.vocab.tasks import TaskType
from sealagent.web.auth import APIInfo
from sealagent.worker.config import ALWAYS_ON, AgentConfig

EPOCH = 0.05
"""Devnet epoch length in the tests: WaitSeed takes 16 epochs."""

AP_PC1 = ALWAYS_ON | {TaskType.ADD_PIECE, TaskType.PRECOMMIT1}
PC2_COMMIT = ALWAYS_ON | {TaskType.PRECOMMIT2, TaskType.COMMIT2}


def manager_config(*, worker_timeout: float = 5.0,
                   storage: StorageConfig | None = None) -> ManagerConfig:
    """A 2 KiB devnet manager's configuration on a free port; without ``storage``, no
    built-in agent."""
    return ManagerConfig(
        api=APIConfig(listen_address="/ip4/127.0.0.1/tcp/0/http"),
        miner=MinerConfig(sector_size=2048),
        storage=storage or StorageConfig(sector_affinity=False, local_worker=False),
        proving=ProvingConfig(snark=False),
        sealing=SealingConfig(epoch_duration=EPOCH, worker_timeout=worker_timeout,
                              min_retry_time=1.0, soft_error_retry_wait=0.5),
    )


def manager_repo(root: Path, *, worker_timeout: float = 5.0) -> MinerRepo:
    """A 2 KiB devnet manager without storage or built-in agent, on a free port."""
    repo = MinerRepo(root)
    repo.init(manager_config(worker_timeout=worker_timeout), local_storage=False)
    return repo


def agent_config(api: APIInfo, repo: Path, name: str, tasks: frozenset[TaskType],
                 **changes: Any) -> AgentConfig:
    """An agent on a free loopback port with fast heartbeats and short long-polls."""
    values: dict[str, Any] = {"api_info": api, "repo": repo, "name": name,
                              "task_types": tasks, "listen": "127.0.0.1:0",
                              "heartbeat_interval": 0.5, "window_wait": 2.0,
                              "environ": {}, "stop_grace": 5.0}
    values.update(changes)
    return AgentConfig(**values)


async def wait_until(check: Callable[[], bool], seconds: float, what: str,
                     poll: float = 0.1) -> None:
    """Poll ``check`` until it holds; fail the test after ``seconds``."""
    with trio.move_on_after(seconds):
        while not check():  # noqa: ASYNC110 - polls files and other processes
            await trio.sleep(poll)
        return
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


class ManagerProbe:
    """What a test sees of a running manager: its admin API, and its task records."""

    def __init__(self, running: RunningManager, client: RPCClient) -> None:
        self.running = running
        self.client = client

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, running: RunningManager,
                   repo: MinerRepo) -> AsyncIterator[ManagerProbe]:
        """A probe with an admin client of ``repo``'s manager."""
        async with open_rpc_client(repo.api_info()) as client:
            yield cls(running, client)

    @classmethod
    async def serve(cls, running: RunningManager, repo: MinerRepo, *,
                    task_status: trio.TaskStatus[ManagerProbe] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        """Keep a probe open until cancelled (``probe = await nursery.start(...)``)."""
        async with cls.open(running, repo) as probe:
            task_status.started(probe)
            await trio.sleep_forever()

    async def pledge(self, count: int = 1) -> None:
        """Pledge ``count`` sectors."""
        for _ in range(count):
            await self.client.call("Sectors.Pledge")

    async def states(self) -> dict[int, str]:
        """Sector number → state."""
        return {s["number"]: s["state"] for s in await self.client.call("Sectors.List")}

    async def jobs(self) -> list[dict[str, Any]]:
        """``sealing jobs``."""
        result: list[dict[str, Any]] = await self.client.call("Sealing.Jobs")
        return result

    async def workers(self) -> list[dict[str, Any]]:
        """``sealing workers``."""
        result: list[dict[str, Any]] = await self.client.call("Sealing.Workers")
        return result

    async def all_proving(self, count: int) -> bool:
        """True when ``count`` sectors exist and all are Proving."""
        found = await self.states()
        return len(found) == count and all(state == "Proving" for state in found.values())

    async def tasks(self, sector: int) -> list[TaskRecord]:
        """Every task of a sector, from the manager's database."""
        return await self.running.service.db.transaction(
            functools.partial(sector_tasks, sector=sector))

    async def task(self, task_id: str) -> TaskRecord:
        """One task, from the manager's database."""
        record = await self.running.service.db.transaction(
            functools.partial(get_task, task_id=task_id))
        assert record is not None, f"no task {task_id}"
        return record

    async def wait(self, check: Callable[[], Awaitable[bool]], seconds: float,
                   what: str) -> None:
        """Poll an async ``check`` until it holds; fail after ``seconds``."""
        with trio.move_on_after(seconds):
            while not await check():  # noqa: ASYNC110 - polls the manager
                await trio.sleep(0.1)
            return
        raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


async def run_cli(argv: list[str],
                  env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``sealagent ARGV`` in a child process: exit status, stdout, stderr."""
    environ = {**os.environ, **(env or {})}
    done = await trio.run_process([sys.executable, "-m", "sealagent", *argv], env=environ,
                                  capture_stdout=True, capture_stderr=True, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def cli(argv: list[str], env: Mapping[str, str] | None = None) -> str:
    """Run ``sealagent ARGV``; returns its stdout (asserts success)."""
    status, out, err = await run_cli(argv, env)
    assert status == 0, f"sealagent {' '.join(argv)} failed:\n{out}\n{err}"
    return out


def manager_env(repo: MinerRepo) -> dict[str, str]:
    """Environment that points the CLI at this manager."""
    return {"SEALAGENT_MINER_PATH": str(repo.root)}


async def stop_process(process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """SIGTERM a child process (unless it ended) and wait for it to exit."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    await wait_until(lambda: process.poll() is not None, seconds, "the process to exit", 0.05)


def agent_process(repo: Path, name: str, api: APIInfo, args: list[str],
                  env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``sealagent run`` as a child process writing its log to ``log``."""
    environ = {**os.environ, **env, "MINER_API_INFO": str(api)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sealagent", "run", "--worker-repo", str(repo),
             "--name", name, "--listen", "127.0.0.1:0", "--heartbeat", "0.5", *args],
            env=environ, stdout=out, stderr=subprocess.STDOUT)
