"""A real manager on loopback (hypercorn, port 0, SQLite file) with fake agents over HTTP."""

from __future__ import annotations

import functools
import gc
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import structlog
import structlog.testing
import trio

from sealagent.cli import main
from sealagent.errors import AuthError, RPCRemoteError, SessionError
from sealagent.manager.config import (
    APIConfig,
    ManagerConfig,
    ProvingConfig,
    SealingConfig,
    StorageConfig,
    render_config,
)
from sealagent.manager.repo import MinerRepo
from sealagent.manager.server import RunningManager, serve_manager
from sealagent.rpc.client import RPCClient
from sealagent.web.auth import (
    create_token,
    delegated_verifier,
    parse_api_info,
    token_id,
    verify_token,
)
from tests.integration.manager_fake_agent import SEALING_TASKS, FakeAgent

SEALED_PHASES = ("AP", "PC1", "PC2", "C1", "FIN")


def fast_config(*, snark: bool = False, local_worker: bool = False) -> ManagerConfig:
    """Devnet settings that seal a 2 KiB sector in seconds (by default all on agents)."""
    return ManagerConfig(
        api=APIConfig(listen_address="/ip4/127.0.0.1/tcp/0/http"),
        storage=StorageConfig(local_worker=local_worker, local_worker_name="builtin"),
        proving=ProvingConfig(snark=snark),
        sealing=SealingConfig(epoch_duration=0.05, precommit_challenge_delay=2,
                              seed_confidence=1, min_retry_time=0.5,
                              soft_error_retry_wait=0.2, worker_timeout=3.0))


@dataclass
class Cluster:
    """A manager, its repo and an admin client."""

    repo: MinerRepo
    manager: RunningManager
    client: RPCClient
    nursery: trio.Nursery

    async def agent(self, name: str, tmp_path: Path, **kwargs: Any) -> FakeAgent:
        """Start a fake agent connected to the manager."""
        agent = FakeAgent(name, self.manager.url, self.repo.token(), tmp_path / name,
                          **kwargs)
        await self.nursery.start(agent.run)
        return agent

    async def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool],
                       limit: float = 40.0) -> list[dict[str, Any]]:
        """Poll ``Sectors.List`` until ``predicate`` holds."""
        with trio.fail_after(limit):
            while True:
                sectors: list[dict[str, Any]] = await self.client.call("Sectors.List")
                if predicate(sectors):
                    return sectors
                await trio.sleep(0.1)


@asynccontextmanager
async def cluster(tmp_path: Path, config: ManagerConfig) -> AsyncIterator[Cluster]:
    """A manager from a fresh repo, stopped at the end."""
    repo = MinerRepo(tmp_path / "repo")
    repo.init(config)
    async with trio.open_nursery() as nursery:
        manager = await nursery.start(functools.partial(serve_manager, repo))
        async with RPCClient(manager.url, repo.token()) as client:
            yield Cluster(repo, manager, client, nursery)
        nursery.cancel_scope.cancel()


def all_in(state: str, count: int) -> Callable[[list[dict[str, Any]]], bool]:
    """``count`` sectors, all in ``state``."""
    return lambda sectors: len(sectors) == count and all(s["state"] == state for s in sectors)


async def run_cli(*argv: str) -> tuple[int, str]:
    """Run the ``sealagent`` command in a thread (it makes blocking calls)."""
    import contextlib
    import io

    out = io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out):
            return main(list(argv))

    code = await trio.to_thread.run_sync(call)
    return code, out.getvalue()


async def test_two_agents_seal_cc_and_deal_sectors_to_proving(tmp_path: Path) -> None:
    data = tmp_path / "piece.bin"
    data.write_bytes(bytes(range(256)) * 3)
    async with cluster(tmp_path, fast_config()) as c:
        a = await c.agent("alpha", tmp_path)
        b = await c.agent("beta", tmp_path)
        repo = str(c.repo.root)
        code, out = await run_cli("sectors", "add-piece", "--repo", repo, str(data))
        assert code == 0 and "Created deal sector: 0" in out
        assert (await c.client.call("Sectors.Pledge"))["number"] == 1
        sectors = await c.wait_for(all_in("Proving", 2))
        assert [s["deal"] for s in sectors] == [True, False]

        # every phase ran exactly once per sector (AddPiece once per piece: the deal
        # piece and its filler), and both agents took part
        executions = a.executions + b.executions
        for number, pieces in ((0, 2), (1, 1)):
            for short in SEALED_PHASES:
                expected = pieces if short == "AP" else 1
                assert executions[(number, short)] == expected, (number, short, executions)
        assert a.executions and b.executions
        assert not executions[(0, "C2")]

        status = await c.client.call("Sectors.Status", [0, True])
        assert status["pieces"][0]["deal"] and status["comm_r"].startswith("bagb")
        kinds = [entry["kind"] for entry in status["log"]]
        for kind in ("SectorStart", "TicketDrawn", "PreCommitLanded", "SeedDrawn",
                     "ProofChecked"):
            assert kind in kinds
        checked = next(e for e in status["log"] if e["kind"] == "ProofChecked")
        assert "SNARK disabled" in checked["message"]

        code, out = await run_cli("sectors", "status", "--repo", repo, "0", "--log")
        assert code == 0 and "Proving" in out and "vanilla proofs" in out
        code, out = await run_cli("sealing", "workers", "--repo", repo)
        assert code == 0
        assert out.count("Worker ") == 2 and "host alpha." in out and "host beta." in out
        assert "\tCPU:  [" in out and "core(s) in use" in out and "\tVMEM: [" in out
        code, out = await run_cli("sealing", "jobs", "--repo", repo)
        assert code == 0 and out.split() == ["ID", "Sector", "Worker", "Hostname", "Task",
                                             "State", "Time"]
        code, out = await run_cli("sectors", "list", "--repo", repo)
        assert code == 0 and out.count("Proving") == 2


async def test_the_built_in_agent_seals_alone(tmp_path: Path) -> None:
    async with cluster(tmp_path, fast_config(local_worker=True)) as c:
        await c.client.call("Sectors.Pledge")
        await c.wait_for(all_in("Proving", 1), limit=60)
        [worker] = await c.client.call("Sealing.Workers")
        assert worker["name"] == "builtin"
        assert "seal/v0/commit/2" in worker["tasks"]  # cpu proves Commit2
        assert {"seal/v0/addpiece", "seal/v0/precommit/1", "seal/v0/commit/1",
                "seal/v0/finalize"} <= set(worker["tasks"])
        [path] = await c.client.call("Storage.List")
        assert path["local"] == str(c.repo.root) and path["sectors"] == 1


async def test_a_manager_on_every_address_records_it_and_is_dialed_at_loopback(
        tmp_path: Path) -> None:
    config = replace(fast_config(local_worker=True),
                     api=APIConfig(listen_address="/ip4/0.0.0.0/tcp/0/http"))
    repo = MinerRepo(tmp_path / "repo")
    repo.init(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(serve_manager, repo))
        assert repo.listen_info().host == "0.0.0.0"
        local = repo.api_info()
        assert local.host == "127.0.0.1" and local.port == repo.listen_info().port > 0
        async with RPCClient(local.url, repo.token()) as client:
            [worker] = await client.call("Sealing.Workers")
        assert worker["name"] == "builtin"
        nursery.cancel_scope.cancel()


async def test_jobs_show_assigned_and_running_tasks(tmp_path: Path) -> None:
    async with cluster(tmp_path, fast_config()) as c:
        agent = await c.agent("gamma", tmp_path)
        gate = trio.Event()
        original = agent._execute

        async def slow(assignment: dict[str, Any]) -> dict[str, Any]:
            await gate.wait()
            return await original(assignment)

        agent._execute = slow  # type: ignore[method-assign]
        await c.client.call("Sectors.Pledge")
        with trio.fail_after(10):
            while True:
                jobs = await c.client.call("Sealing.Jobs")
                if jobs and jobs[0]["state"] != "assigned":
                    break
                await trio.sleep(0.05)
        assert [(j["short"], j["state"]) for j in jobs] == [("AP", "running")]
        code, out = await run_cli("sealing", "jobs", "--repo", str(c.repo.root))
        assert code == 0
        line = out.splitlines()[1].split()
        assert line[:2] == ["t-1", "0"] and line[4:6] == ["AP", "running"]
        workers = await c.client.call("Sealing.Workers")
        assert workers[0]["task_counts"] == {"seal/v0/addpiece": 1}
        gate.set()
        await c.wait_for(all_in("Proving", 1))
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(c.manager.url + "/debug/metrics")).text
        assert 'sealagent_sectors{state="Proving"} 1.0' in metrics
        assert "sealagent_task_duration_seconds_count" in metrics


async def test_without_a_c2_backend_the_sector_waits_in_committing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIL_PROOFS_PARAMETER_CACHE", str(tmp_path / "params"))
    with structlog.testing.capture_logs() as logs:
        async with cluster(tmp_path, fast_config(snark=True)):
            pass
    assert any("no Groth16 parameters" in e["event"] and e["log_level"] == "warning"
               for e in logs)
    async with cluster(tmp_path / "again", fast_config(snark=True)) as c:
        await c.agent("nogpu", tmp_path, tasks=SEALING_TASKS)
        await c.client.call("Sectors.Pledge")
        sectors = await c.wait_for(
            lambda s: s[0]["state"] == "Committing" and s[0]["task"] is not None
            and s[0]["task"]["short"] == "C2")
        assert "no connected worker offers C2 (seal/v0/commit/2)" in sectors[0]["waiting"]
        diag = await c.client.call("Sealing.SchedDiag")
        assert [r["TaskType"] for r in diag["SchedInfo"]["Requests"]] == ["seal/v0/commit/2"]


async def test_tokens_and_malformed_requests_are_refused(tmp_path: Path) -> None:
    gc.unfreeze()
    async with cluster(tmp_path, fast_config()) as c:
        assert gc.get_freeze_count() > 0, "the loaded state is kept out of full collections"
        url = c.manager.url
        async with RPCClient(url, "not-a-token") as bad:
            with pytest.raises(AuthError):
                await bad.call("Sectors.List")
        other = create_token(b"x" * 32, ["admin"])
        async with RPCClient(url, other) as forged:
            with pytest.raises(AuthError):
                await forged.call("Sectors.List")
        read_only = create_token(c.repo.secret(), ["read"])
        async with RPCClient(url, read_only) as reader:
            assert await reader.call("Sectors.List") == []
            with pytest.raises(AuthError):
                await reader.call("Sectors.Pledge")
        token = c.repo.token()

        async def post(body: bytes) -> int:
            async with httpx.AsyncClient() as http:
                answer = await http.post(url + "/rpc/v0", content=body,
                                         headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200
            return int(answer.json()["error"]["code"])

        def call(method: str, params: list[Any]) -> bytes:
            return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                               "params": params}).encode()

        assert await post(b"{nope") == -32700
        assert await post(b'{"jsonrpc": "2.0", "id": 1}') == -32600
        assert await post(call("Sealing.Nope", [])) == -32601
        assert await post(call("Sectors.Status", ["three"])) == -32602
        with pytest.raises(RPCRemoteError) as info:
            await c.client.call("Sealing.WorkerConnect", [{"worker_id": "w", "name": "x",
                                                          "tasks": ["nope"]}])
        assert info.value.code == 3 and "unknown task type" in info.value.message
        with pytest.raises(RPCRemoteError, match="cpus"):
            await c.client.call("Sealing.WorkerConnect", [{"worker_id": "w", "name": "x",
                                                          "resources": {}}])
        with pytest.raises(SessionError):
            await c.client.call("Sealing.RequestWindow", ["no-such-session", 0.1])
        with pytest.raises(RPCRemoteError, match="missing field 'attempt'"):
            await c.client.call("Sealing.ReportResult", ["s", {"task_id": "t-1", "ok": True}])
        with pytest.raises(RPCRemoteError, match="no sector 5"):
            await c.client.call("Sectors.Status", [5])
        with pytest.raises(RPCRemoteError, match="no open job"):
            await c.client.call("Sealing.Abort", ["t-42"])
        code, _ = await run_cli("sectors", "remove", "--repo", str(c.repo.root), "0")
        assert code == 2


async def test_auth_and_storage_commands(tmp_path: Path) -> None:
    async with cluster(tmp_path, fast_config()) as c:
        repo = str(c.repo.root)
        code, out = await run_cli("auth", "api-info", "--perm", "admin", "--repo", repo)
        assert code == 0
        info = parse_api_info(out.strip().removeprefix("MINER_API_INFO="))
        assert info.url == c.manager.url
        assert verify_token(c.repo.secret(), info.token) == {"read", "write", "sign", "admin"}
        code, out = await run_cli("auth", "create-token", "--perm", "write", "--repo", repo)
        assert verify_token(c.repo.secret(), out.strip()) == {"read", "write"}
        store = tmp_path / "store"
        code, out = await run_cli("storage", "attach", "--init", "--store", "--repo", repo,
                                  "--weight", "7", "--max-storage", "1.5GiB",
                                  "--groups", "cold, archive", "--allow-to", "hot",
                                  str(store))
        assert code == 0 and out.startswith(f"Attached {store}")
        meta = json.loads((store / "sectorstore.json").read_text())
        assert (meta["Weight"], meta["MaxStorage"]) == (7, 3 * 2**29)
        assert (meta["Groups"], meta["AllowTo"]) == (["cold", "archive"], ["hot"])
        code, _ = await run_cli("storage", "attach", "--store", "--repo", repo,
                                "--groups", "cold", str(tmp_path / "other"))
        assert code == 2
        with pytest.raises(SystemExit) as usage:
            await run_cli("storage", "attach", "--init", "--store", "--repo", repo,
                          "--max-storage", "lots", str(tmp_path / "other"))
        assert usage.value.code == 2 and not (tmp_path / "other").exists()
        code, out = await run_cli("storage", "list", "--repo", repo)
        assert code == 0 and out.count("Use: Seal Store") == 1
        assert f"Local: {store}" in out and "Use: Store" in out
        assert str(store) in (c.repo.root / "storage.json").read_text()
        code, _ = await run_cli("storage", "attach", "--init", "--repo", repo, str(store))
        assert code == 1



async def test_storage_redeclare_and_detach(tmp_path: Path) -> None:
    async with cluster(tmp_path, fast_config()) as c:
        repo = str(c.repo.root)
        first, second = tmp_path / "store1", tmp_path / "store2"
        for directory in (first, second):
            code, _ = await run_cli("storage", "attach", "--init", "--store", "--repo", repo,
                                    str(directory))
            assert code == 0
        (first / "sealed" / "s-t01000-5").write_bytes(b"x" * 2048)
        (first / "cache" / "s-t01000-5").mkdir()
        code, out = await run_cli("storage", "redeclare", "--repo", repo)
        assert code == 0 and out.strip().endswith("changed: 5")
        code, out = await run_cli("storage", "detach", "--repo", repo, str(first))
        assert code == 1
        (second / "sealed" / "s-t01000-5").write_bytes(b"x" * 2048)
        code, out = await run_cli("storage", "redeclare", "--repo", repo)
        with pytest.raises(Exception, match=r"only copy of s-t01000-5 \(cache\)"):
            await c.client.call("Storage.Detach", [str(first)])
        code, out = await run_cli("storage", "detach", "--force", "--repo", repo, str(first))
        assert code == 0 and f"Detached {first}" in out
        listed = {p["local"] for p in await c.client.call("Storage.List")}
        assert str(first) not in listed and str(second) in listed
        assert str(first) not in (c.repo.root / "storage.json").read_text()
        assert (first / "sealed" / "s-t01000-5").exists()
        (second / "sealed" / "s-t01000-5").unlink()
        code, out = await run_cli("storage", "redeclare", "--repo", repo)
        assert code == 0 and out.strip().endswith("changed: 5")
        code, _ = await run_cli("storage", "detach", "--repo", repo, str(second))
        assert code == 0
        code, _ = await run_cli("storage", "detach", "--repo", repo, str(second))
        assert code == 1


async def test_tokens_are_revoked_at_the_manager_and_at_agents(tmp_path: Path) -> None:
    async with cluster(tmp_path, fast_config()) as c:
        repo = str(c.repo.root)
        code, out = await run_cli("auth", "create-token", "--perm", "admin", "--expires",
                                  "1h", "--repo", repo)
        token = out.strip()
        claims = jwt.decode(token, options={"verify_signature": False})
        assert code == 0 and claims["exp"] - claims["iat"] == 3600
        other = (await run_cli("auth", "create-token", "--perm", "admin", "--repo", repo))[1]
        assert other.strip() != token and token_id(other.strip()) != claims["jti"]
        agent_side = delegated_verifier(lambda t: c.client.call("Auth.Verify", [t]),
                                        cache_s=0)
        async with RPCClient(c.manager.url, token) as holder:
            assert await holder.call("Sectors.List") == []
            assert await agent_side(token) == {"read", "write", "sign", "admin"}
            code, out = await run_cli("auth", "revoke", claims["jti"], "--repo", repo)
            assert code == 0 and out.strip() == f"Revoked token {claims['jti']}"
            with pytest.raises(AuthError, match="revoked"):
                await holder.call("Sectors.List")
            with pytest.raises(AuthError, match="revoked"):
                await agent_side(token)
        assert await agent_side(other.strip()) == {"read", "write", "sign", "admin"}
        code, out = await run_cli("auth", "revoke", token, "--repo", repo)
        assert code == 0 and "already revoked" in out
        code, _ = await run_cli("auth", "revoke", "not-an-id", "--repo", repo)
        assert code == 1
        with pytest.raises(SystemExit) as usage:
            await run_cli("auth", "create-token", "--perm", "read", "--expires", "0s",
                          "--repo", repo)
        assert usage.value.code == 2
    # the revocation outlives a restart
    async with trio.open_nursery() as nursery:
        manager = await nursery.start(functools.partial(serve_manager, c.repo))
        async with RPCClient(manager.url, token) as holder:
            with pytest.raises(AuthError, match="revoked"):
                await holder.call("Sectors.List")
        nursery.cancel_scope.cancel()


async def until_sectors(client: RPCClient, predicate: Callable[[list[dict[str, Any]]], bool]
                        ) -> list[dict[str, Any]]:
    """Poll ``Sectors.List`` until ``predicate`` holds (40 s at most)."""
    with trio.fail_after(40):
        while True:
            sectors: list[dict[str, Any]] = await client.call("Sectors.List")
            if predicate(sectors):
                return sectors
            await trio.sleep(0.1)


async def test_queued_c2_follows_snark_turned_off_across_a_restart(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listen = APIConfig(listen_address=f"/ip4/127.0.0.1/tcp/{port}/http")
    repo = MinerRepo(tmp_path / "repo")
    repo.init(replace(fast_config(snark=True), api=listen))
    url = f"http://127.0.0.1:{port}"
    agent = FakeAgent("nogpu", url, repo.token(), tmp_path / "nogpu", tasks=SEALING_TASKS)
    async with trio.open_nursery() as outer, RPCClient(url, repo.token()) as client:
        async with trio.open_nursery() as first:
            await first.start(functools.partial(serve_manager, repo))
            await outer.start(agent.run)
            for _ in range(2):
                await client.call("Sectors.Pledge")
            sectors = await until_sectors(client, lambda listed: all(
                x["state"] == "Committing" and x["task"] and x["task"]["short"] == "C2"
                for x in listed))
            code, out = await run_cli("sealing", "abort", "--sched", "--repo", str(repo.root),
                                      sectors[1]["task"]["task_id"])
            assert code == 0 and "C2" in out
            first.cancel_scope.cancel()
        repo.config_file.write_text(render_config(replace(fast_config(snark=False),
                                                          api=listen)))
        async with trio.open_nursery() as second:
            await second.start(functools.partial(serve_manager, repo))
            await until_sectors(client, all_in("Proving", 2))
            log = (await client.call("Sectors.Status", [0, True]))["log"]
            second.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    assert any("Commit2 task withdrawn" in e["message"] and "Snark is off" in e["message"]
               for e in log), "\n".join(e["message"] for e in log)
    assert any("vanilla" in e["message"].lower() for e in log), log
