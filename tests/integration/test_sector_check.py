"""``sectors check [--slow]`` and ``storage find`` on a sector sealed by a real agent.

A manager and one agent on loopback seal a 2 KiB sector to Proving; the CLI then finds
its files on the agent and checks them over the agent's ``/remote``; ``--slow`` has the
agent answer fresh challenges from its files and the manager verify them.  One flipped
byte of the sealed file passes the fast check but fails ``--slow`` with the reason; a
sealed file cut short, then a cache deleted behind the index's back, fail the fast check.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import trio

from sealagent.manager.server import serve_manager
from sealagent.storage.paths import RepoStorage
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.worker.agent import Agent, run_agent
from tests.integration.agent_harness import (
    AP_PC1,
    PC2_COMMIT,
    ManagerProbe,
    agent_config,
    cli,
    manager_env,
    manager_repo,
    run_cli,
)
from tests.unit.test_post import flip_byte


def sector_file(repo: Path, file_type: FileType, number: int) -> Path:
    """Where the agent stores one file of the sector."""
    sector = SectorID(1000, number)
    for path in RepoStorage(repo).open_all():
        if path.has(file_type, sector):
            return path.sector_path(file_type, sector)
    raise AssertionError(f"the agent has no {file_type.dir_name} file of sector {number}")


async def test_check_and_find_a_proving_sector(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        async with ManagerProbe.open(running, repo) as probe:
            agent: Agent = await nursery.start(functools.partial(
                run_agent, agent_config(repo.api_info(), tmp_path / "box", "box",
                                        AP_PC1 | PC2_COMMIT)))
            env = manager_env(repo)
            await probe.pledge(1)
            await probe.wait(lambda: probe.all_proving(1), 90, "the sector in Proving")
            found = await cli(["storage", "find", "0"], env)
            good = await cli(["sectors", "check", "0"], env)
            every = await cli(["sectors", "check"], env)
            answer = await probe.client.call("Sectors.Check", [0])
            slow = await cli(["sectors", "check", "0", "--slow"], env)
            slow_json = json.loads(await cli(["sectors", "check", "--slow", "--json"], env))

            sealed = sector_file(tmp_path / "box", FileType.SEALED, 0)
            flip_byte(sealed, 1234)
            fast_after_flip = await run_cli(["sectors", "check", "0"], env)
            slow_after_flip = await run_cli(["sectors", "check", "0", "--slow"], env)
            json_after_flip = await run_cli(["sectors", "check", "0", "--slow", "--json"], env)
            with sealed.open("r+b") as f:
                f.truncate(1000)
            short = await run_cli(["sectors", "check", "0"], env)
            twice = await run_cli(["sectors", "check", "0", "0"], env)
            shutil.rmtree(sector_file(tmp_path / "box", FileType.CACHE, 0))
            no_cache = await probe.client.call("Sectors.Check", [0])
            unknown = await run_cli(["storage", "find", "7"], env)
        agent.stop()
        await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()

    assert "Host: box" in found and "sealed" in found and "cache" in found
    assert good.rstrip().endswith("sector 0: ok")
    assert every == good
    assert answer["ok"] and answer["problems"] == []
    assert {c["file_type"] for c in answer["copies"] if c["ok"]} >= {"sealed", "cache"}
    assert all(c["ok"] for c in answer["copies"]), json.dumps(answer)
    status, out, _ = short
    assert status == 1
    assert "1000 bytes, expected the sector size 2048" in out
    assert "no good copy of the sealed file" in out
    assert twice[0] == 1 and twice[1].rstrip().endswith("0 of 2 sectors ok")
    assert not no_cache["ok"]
    assert "no good copy of the cache file" in no_cache["problems"]
    cache = [c for c in no_cache["copies"] if c["file_type"] == "cache"]
    assert cache and "no cache file" in (cache[0]["problem"] or "")
    assert unknown[0] != 0 and "no sector 7" in unknown[2]

    assert slow.rstrip().endswith("sector 0: ok")
    assert "challenges" in slow and "http://" in slow
    (checked,) = slow_json
    assert checked["ok"] and checked["number"] == 0 and len(checked["challenges"]) == 10
    assert all(0 <= c < 64 for c in checked["challenges"])
    assert len(bytes.fromhex(checked["randomness"])) == 32
    assert [p["ok"] for p in checked["proofs"]] == [True]
    assert fast_after_flip[0] == 0 and fast_after_flip[1].rstrip().endswith("sector 0: ok")
    status, out, _ = slow_after_flip
    assert status == 1
    assert "no copy answered fresh challenges with a proof that verifies" in out
    assert "challenge 0 (node" in out and "do not hash to node 0 of row 2" in out
    assert f"the sealed file {sealed} is damaged" in out
    status, out, _ = json_after_flip
    (flipped,) = json.loads(out)
    assert status == 1 and not flipped["ok"]
    assert all(c["ok"] for c in flipped["copies"])  # the sizes are still right
    (answer_after_flip,) = flipped["proofs"]
    assert not answer_after_flip["ok"]
    assert "HTTP 422" in answer_after_flip["problem"]
