"""An agent warms its chosen backends before it asks for its first window."""

from __future__ import annotations

import functools
import types
from pathlib import Path

import trio

from sealagent import hookimpl
from sealagent.manager.server import serve_manager
from sealagent.phases import BackendInfo
from sealagent.plugins import PluginSet
from sealagent.worker.agent import Agent, run_agent
from tests.integration.agent_harness import AP_PC1, agent_config, manager_repo


def _warmable(log: list[str], *, fail: bool = False) -> types.ModuleType:
    """A backend whose warm-up is recorded in ``log`` (or fails)."""
    module = types.ModuleType("warmable")

    @hookimpl
    def sealagent_backend_info() -> BackendInfo:
        return BackendInfo(name="warmable", description="test double", version="1")

    @hookimpl
    def sealagent_warm(progress: object) -> None:
        log.append("warm")
        if fail:
            raise RuntimeError("compiler exploded")

    module.sealagent_backend_info = sealagent_backend_info  # type: ignore[attr-defined]
    module.sealagent_warm = sealagent_warm  # type: ignore[attr-defined]
    return module


async def _start_agent(tmp_path: Path, plugin: types.ModuleType, log: list[str]) -> list[str]:
    """Start a manager and an agent choosing ``plugin``; stop both once it is registered.

    Returns ``log`` as it was when the agent had registered, before its first window.
    """
    repo = manager_repo(tmp_path / "miner")
    plugins = PluginSet.load(autoload=False, extra={"warmable": plugin})
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        config = agent_config(repo.api_info(), tmp_path / "agent", "box", AP_PC1,
                              plugins=("warmable",))
        agent: Agent = await nursery.start(functools.partial(run_agent, config,
                                                             plugins=plugins))
        at_start = list(log)
        agent.stop()
        await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()
    return at_start


async def test_agent_warms_its_plugins_before_working(tmp_path: Path) -> None:
    log: list[str] = []
    assert await _start_agent(tmp_path, _warmable(log), log) == ["warm"]


async def test_a_plugin_that_fails_to_warm_does_not_stop_the_agent(tmp_path: Path) -> None:
    log: list[str] = []
    assert await _start_agent(tmp_path, _warmable(log, fail=True), log) == ["warm"]
