"""An agent started with ``--plugin gpu-cupy`` on a host without CUDA: one warning, cpu PC2."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import structlog
import trio

import sealagent_gpu_cupy
from sealagent.manager.server import serve_manager
from sealagent.phases import Phase
from sealagent.plugins import PluginSet
from sealagent.worker.agent import Agent, run_agent
from sealagent_gpu_cupy.device import probe_cuda
from tests.integration.agent_harness import PC2_COMMIT, agent_config, manager_repo

pytestmark = pytest.mark.skipif(probe_cuda().device is not None,
                                reason="this host has a usable CUDA GPU")


async def test_agent_warns_once_and_runs_precommit2_on_cpu(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    plugins = PluginSet.load(autoload=False, extra={"gpu-cupy": sealagent_gpu_cupy})
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            running = await nursery.start(functools.partial(serve_manager, repo))
            config = agent_config(repo.api_info(), tmp_path / "agent", "gpu-box", PC2_COMMIT,
                                  plugins=("gpu-cupy",))
            agent: Agent = await nursery.start(functools.partial(run_agent, config,
                                                                 plugins=plugins))
            backends = agent.backends()
            agent.stop()
            await agent.finished.wait()
            running.stop()
            nursery.cancel_scope.cancel()
    warnings = [e for e in logs if e.get("plugin") == "gpu-cupy"
                and e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["reason"] == probe_cuda().reason
    assert backends[Phase.PRECOMMIT2.task_type] == "cpu"
    assert not any(e.get("plugin") == "gpu-cupy" and "warm" in e["event"] for e in logs)
