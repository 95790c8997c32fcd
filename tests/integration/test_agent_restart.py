"""``kill -9`` of an agent in the middle of PreCommit1, then a restart on the same host:
the sector finishes, and the label layer completed before the kill is not computed again.

The agent is a real ``sealagent run`` child process.  A start-up hook (``pause_hook``)
makes the labeling stop after layer 1, so the kill always lands at the same point.
"""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import trio

from sealagent.manager.server import serve_manager
from tests.integration.agent_harness import (
    ManagerProbe,
    agent_process,
    manager_repo,
    stop_process,
    wait_until,
)

HOOK_DIR = Path(__file__).resolve().parent / "pause_hook"


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


async def test_kill_9_mid_pc1_then_restart_resumes(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    worker_repo = tmp_path / "worker"
    paused_file = tmp_path / "paused"
    log = tmp_path / "agent.log"
    cache = worker_repo / "cache" / "s-t01000-0"
    layer1, layer2 = cache / "sc-02-data-layer-1.dat", cache / "sc-02-data-layer-2.dat"
    pausing = {"PYTHONPATH": os.pathsep.join([str(HOOK_DIR), os.environ.get("PYTHONPATH", "")]),
               "SEALAGENT_TEST_PC1_PAUSE_AFTER_LAYER": "1",
               "SEALAGENT_TEST_PC1_PAUSED_FILE": str(paused_file)}
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        api = repo.api_info()
        first = agent_process(worker_repo, "box", api, [], pausing, log)
        try:
            await probe.pledge()
            await wait_until(paused_file.exists, 60, "PreCommit1 to pause after layer 1")
            phase_pid = int(paused_file.read_text())
            before = layer1.stat()
            assert not layer2.exists()
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
            await wait_until(lambda: _gone(phase_pid), 10, "the orphaned phase to die")
        finally:
            await stop_process(first)

        second = agent_process(worker_repo, "box", api, [], {}, log)
        try:
            await wait_until(layer2.exists, 60, "PreCommit1 to finish layer 2")
            after = layer1.stat()
            await probe.wait(lambda: probe.all_proving(1), 60, "the sector in Proving")
            history = await probe.tasks(0)
        finally:
            await stop_process(second)
        running.stop()
        nursery.cancel_scope.cancel()

    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    pc1 = [t for t in history if t.phase.short == "PC1"]
    assert [(t.attempt, str(t.state)) for t in pc1] == [(1, "done")]
    assert "resuming task" in log.read_text()
