"""kill -9 of the manager mid-pipeline: after a restart every sector finishes, none is
lost and no phase of any sector runs twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import pytest
import trio

from sealagent.errors import RPCTransportError
from sealagent.manager.config import APIConfig
from sealagent.manager.repo import MinerRepo
from sealagent.rpc.client import RPCClient
from tests.integration.manager_fake_agent import FakeAgent
from tests.integration.test_manager_pipeline import SEALED_PHASES, fast_config

SECTORS = 3


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_manager(repo: MinerRepo, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """``sealagent miner run`` as a child process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "sealagent", "miner", "run",
                             "--repo", str(repo.root)], stdout=log, stderr=log, env=env)


async def call(client: RPCClient, method: str, *params: Any) -> Any:
    """Call, waiting out the time the manager is down."""
    with trio.fail_after(30):
        while True:
            try:
                return await client.call(method, list(params), timeout=5)
            except RPCTransportError:
                await trio.sleep(0.1)


@pytest.fixture
def manager_log(tmp_path: Path) -> Iterator[IO[bytes]]:
    """Where the manager child processes write their output."""
    with open(tmp_path / "manager.log", "ab") as log:
        yield log


async def test_kill_9_mid_pipeline_then_restart_seals_every_sector_once(
        tmp_path: Path, manager_log: IO[bytes]) -> None:
    port = free_port()
    config = replace(fast_config(),
                     api=APIConfig(listen_address=f"/ip4/127.0.0.1/tcp/{port}/http"))
    repo = MinerRepo(tmp_path / "repo")
    repo.init(config)
    url = f"http://127.0.0.1:{port}"
    processes = [start_manager(repo, manager_log)]
    killed = trio.Event()
    kill_started: list[bool] = []

    async def kill_at_first_pc2_report(assignment: dict[str, Any],
                                       report: dict[str, Any]) -> None:
        """The first PreCommit2 result is ready: kill -9 the manager, start a new one.

        Both agents may get here at once; only the first (``kill_started`` is set before
        any checkpoint) kills and restarts.
        """
        if assignment["task_type"] != "seal/v0/precommit/2" or kill_started:
            return
        kill_started.append(True)
        processes[0].send_signal(signal.SIGKILL)
        await trio.to_thread.run_sync(processes[0].wait)
        killed.set()
        processes.append(start_manager(repo, manager_log))

    agents = [FakeAgent(name, url, repo.token(), tmp_path / name,
                        before_report=kill_at_first_pc2_report) for name in ("alpha", "beta")]
    try:
        async with RPCClient(url, repo.token()) as client, trio.open_nursery() as nursery:
            await call(client, "Common.Version")
            for agent in agents:
                await nursery.start(agent.run)
            for _ in range(SECTORS):
                await call(client, "Sectors.Pledge")
            with trio.fail_after(90):
                while True:
                    sectors = await call(client, "Sectors.List")
                    if killed.is_set() and all(s["state"] == "Proving" for s in sectors):
                        break
                    await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
    finally:
        for process in processes:
            process.kill()
            process.wait()

    assert [p.returncode for p in processes] == [-signal.SIGKILL, -signal.SIGKILL]
    assert len(sectors) == SECTORS
    executions = agents[0].executions + agents[1].executions
    for number in range(SECTORS):
        for short in SEALED_PHASES:
            assert executions[(number, short)] == 1, (number, short, executions)
    assert sum(executions.values()) == SECTORS * len(SEALED_PHASES)
    manager_log.flush()
    text = (tmp_path / "manager.log").read_text()
    assert text.count('"event": "manager listening"') == 2
    hint = f"dashboard at {url}/dashboard/: log in with a token from `sealagent auth create-token"
    assert text.count(hint) == 2
