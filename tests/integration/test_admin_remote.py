"""Every admin command from "another host": a directory with no manager repo, only
``MINER_API_INFO``, against a real manager and a real agent; each ``--json`` parsed."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

from sealagent.manager.server import serve_manager
from sealagent.web.auth import parse_api_info, verify_token
from sealagent.worker.agent import Agent, run_agent
from tests.integration.agent_harness import (
    AP_PC1,
    PC2_COMMIT,
    ManagerProbe,
    agent_config,
    manager_repo,
)


async def remote_cli(argv: list[str], cwd: Path, api_info: str,
                     env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``sealagent ARGV`` run in ``cwd`` with an empty HOME, no repo variables and only
    ``MINER_API_INFO`` (plus ``env``)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEALAGENT_")}
    environ.update({"HOME": str(cwd), "MINER_API_INFO": api_info, **(env or {})})
    done = await trio.run_process([sys.executable, "-m", "sealagent", *argv], cwd=cwd,
                                  env=environ, capture_stdout=True, capture_stderr=True,
                                  check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def ok(argv: list[str], cwd: Path, api_info: str) -> str:
    """stdout of a command that must succeed."""
    status, out, err = await remote_cli(argv, cwd, api_info)
    assert status == 0, f"sealagent {' '.join(argv)} failed:\n{out}\n{err}"
    return out


async def as_json(argv: list[str], cwd: Path, api_info: str) -> Any:
    """The parsed ``--json`` output of a command."""
    return json.loads(await ok([*argv, "--json"], cwd, api_info))


async def test_admin_commands_with_only_miner_api_info(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = tmp_path / "store"
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        api = str(repo.api_info())
        agent: Agent = await nursery.start(functools.partial(run_agent, agent_config(
            repo.api_info(), tmp_path / "w", "box", AP_PC1 | PC2_COMMIT)))
        pledged = await ok(["sectors", "pledge"], elsewhere, api)
        await probe.wait(lambda: probe.all_proving(1), 90, "the sector in Proving")
        listed = await as_json(["sectors", "list"], elsewhere, api)
        status = await as_json(["sectors", "status", "0"], elsewhere, api)
        status_text = await ok(["sectors", "status", "0", "--log"], elsewhere, api)
        workers = await as_json(["sealing", "workers"], elsewhere, api)
        jobs = await as_json(["sealing", "jobs"], elsewhere, api)
        diag = json.loads(await ok(["sealing", "sched-diag"], elsewhere, api))
        attached = await ok(["storage", "attach", "--init", "--store", str(store)],
                            elsewhere, api)
        paths = await as_json(["storage", "list"], elsewhere, api)
        token = (await ok(["auth", "create-token", "--perm", "read"], elsewhere, api)).strip()
        info_line = (await ok(["auth", "api-info", "--perm", "write"], elsewhere, api)).strip()
        revoked = await ok(["auth", "revoke", token], elsewhere, api)
        _, info_out, _ = await remote_cli(["info", "--json"], elsewhere, api,
                                          {"SEALAGENT_WORKER_PATH": str(tmp_path / "w")})
        refused = await remote_cli(["sectors", "list"], elsewhere, "not-an-api-info")
        agent.stop()
        await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()
    gone = await remote_cli(["sealing", "jobs", "--timeout", "2"], elsewhere, api)

    assert not (elsewhere / ".sealagent-miner").exists()
    assert pledged.strip() == "Created CC sector: 0"
    assert [(s["number"], s["state"], s["deal"]) for s in listed] == [(0, "Proving", False)]
    assert status["number"] == 0 and status["state"] == "Proving" and status["comm_r"]
    assert {p["short"] for p in status["phases"] if p["state"] == "done"} >= {
        "AP", "PC1", "PC2", "C1", "FIN"}
    assert all(p["hostname"] == "box" for p in status["phases"])
    assert {t for f in status["files"] for t in f["file_types"]} >= {"sealed", "cache"}
    assert "Status:\tProving" in status_text and "Event Log:" in status_text
    assert "Phase:\tPC1 done" in status_text
    (worker,) = workers
    assert worker["name"] == "box" and worker["enabled"] is True
    assert worker["resources"]["cpus"] >= 1
    assert jobs == []
    assert diag["RetWait"] == []
    assert "Attached" in attached
    (store_path,) = [p for p in paths if p["local"] == str(store)]
    assert store_path["can_store"] is True and store_path["can_seal"] is False
    assert verify_token(repo.secret(), token) == {"read"}
    name, _, remote_addr = info_line.partition("=")
    new_info = parse_api_info(remote_addr)
    assert name == "MINER_API_INFO"
    assert new_info.multiaddr == parse_api_info(api).multiaddr
    assert verify_token(repo.secret(), new_info.token) == {"read", "write"}
    assert revoked.startswith("Revoked token ")
    agent_info = json.loads(info_out)
    assert agent_info["name"] == "box" and agent_info["enabled"] is True
    assert refused[0] == 2 and "MINER_API_INFO" in refused[2]
    assert gone[0] == 1 and "(from $MINER_API_INFO)" in gone[2]
