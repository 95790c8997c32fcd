"""Every agent is its own worker: the identity kept in its repo, not its display name.

``sealagent run`` without ``--name`` on the manager's host is named after the host, as
the manager's built-in agent is.  Both must stay connected side by side (neither takes
the other's session), and an agent restarted from the same repo after ``kill -9`` is the
same worker.
"""

from __future__ import annotations

import functools
import signal
import socket
from dataclasses import replace
from pathlib import Path

import trio

from sealagent.manager.config import render_config
from sealagent.manager.repo import MinerRepo
from sealagent.manager.server import serve_manager
from sealagent.worker.repo import WorkerRepo
from tests.integration.agent_harness import (
    ManagerProbe,
    agent_process,
    manager_repo,
    stop_process,
)


def _with_built_in_agent(repo: MinerRepo) -> None:
    """Turn the built-in agent on (named after the host, the default) for AddPiece only."""
    config = repo.config()
    storage = replace(config.storage, local_worker=True, local_worker_name="",
                      allow_precommit1=False, allow_precommit2=False, allow_commit=False,
                      allow_unseal=False)
    repo.config_file.write_text(render_config(replace(config, storage=storage)))


async def test_an_agent_named_like_the_built_in_agent_is_a_worker_of_its_own(
        tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    _with_built_in_agent(repo)
    host = socket.gethostname()
    worker_repo = tmp_path / "worker"
    log = tmp_path / "agent.log"
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        first = agent_process(worker_repo, host, repo.api_info(), [], {}, log)
        try:
            await probe.wait(lambda: _count_workers(probe, 2), 60, "two workers")
            await trio.sleep(3)  # time for a session tug-of-war, if there were one
            workers = await probe.workers()
            assert [w["name"] for w in workers] == [host, host]
            ids = {w["worker_id"] for w in workers}
            own = WorkerRepo(worker_repo).identity()
            assert len(ids) == 2 and own in ids
            assert log.read_text().count('"event": "registered"') == 1
            await probe.pledge()
            await probe.wait(lambda: probe.all_proving(1), 90, "the sector in Proving")
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
            second = agent_process(worker_repo, "renamed", repo.api_info(), [], {}, log)
            try:
                await probe.wait(lambda: _has(probe, own, "renamed"), 60,
                                 "the restarted agent back under its identity")
                assert len(await probe.workers()) == 2
            finally:
                await stop_process(second)
        finally:
            await stop_process(first)
        running.stop()
        nursery.cancel_scope.cancel()


async def _count_workers(probe: ManagerProbe, count: int) -> bool:
    return len(await probe.workers()) == count


async def _has(probe: ManagerProbe, worker_id: str, name: str) -> bool:
    return any(w["worker_id"] == worker_id and w["name"] == name
               for w in await probe.workers())
