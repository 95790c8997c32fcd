"""Unsealing a deal sector back to the exact piece bytes, on a real manager and agents.

Agent ``box`` seals a 2 KiB deal sector (a 1016-byte piece of random bytes, followed by a
zero filler) to Proving; it does not run Unseal.  Its unsealed copy is dropped.  An Unseal
then waits, saying that no agent runs it, until agent ``reader`` (``--unseal``, no
sealed files) connects: it fetches the sealed replica and cache and unseals, and
``pieces get`` (from another directory, with only ``MINER_API_INFO``) reads the stored
copy, streamed by the manager's ``GET /piece/<cid>`` (Range reads of it are checked
directly, in small chunks so that the stream takes several).  Once that copy is dropped
too, ``pieces get`` unseals again by itself; both hand back exactly the original bytes.
An unknown CID and a corrupted unsealed copy fail clearly, and nothing is written.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import httpx
import pytest
import trio

from sealagent.manager import piece_route
from sealagent.manager.server import serve_manager
from sealagent.phases import Phase
from sealagent.proofs.pieces import generate_piece_commitment
from sealagent.storage.paths import RepoStorage
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import TaskType
from sealagent.worker.agent import Agent, run_agent
from sealagent.worker.config import ALWAYS_ON
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
from tests.integration.test_admin_remote import remote_cli
from tests.integration.test_sector_check import sector_file

PIECE_SIZE = 1016
"""Half the sector's 2032 bytes: a zero filler piece follows it."""


async def piece_answers(url: str, token: str, cid: str,
                        other_cid: str) -> dict[str, httpx.Response]:
    """The manager's answers to piece requests: whole, ranges, errors."""
    piece = f"{url}{piece_route.PIECE_ROUTE}/{cid}"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
        return {"whole": await client.get(piece),
                "range": await client.get(piece, headers={"Range": "bytes=100-899"}),
                "tail": await client.get(piece, headers={"Range": "bytes=-16"}),
                "past": await client.get(piece, headers={"Range": f"bytes={PIECE_SIZE}-"}),
                "unknown": await client.get(f"{url}{piece_route.PIECE_ROUTE}/{other_cid}"),
                "post": await client.post(piece),
                "anonymous": await client.get(piece, headers={"Authorization": ""})}


async def test_pieces_get_unseals_a_deal_sector_to_the_original_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(piece_route, "STREAM_CHUNK", 127 * 3)  # several chunks a piece
    data = os.urandom(PIECE_SIZE)
    piece_file = tmp_path / "piece.bin"
    piece_file.write_bytes(data)
    cid = generate_piece_commitment(data, PIECE_SIZE).cid
    other_cid = generate_piece_commitment(os.urandom(PIECE_SIZE), PIECE_SIZE).cid
    repo = manager_repo(tmp_path / "miner")
    env = manager_env(repo)
    got, again, corrupt_out = tmp_path / "got.bin", tmp_path / "again.bin", tmp_path / "bad.bin"
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        async with ManagerProbe.open(running, repo) as probe:
            box: Agent = await nursery.start(functools.partial(
                run_agent, agent_config(repo.api_info(), tmp_path / "box", "box",
                                        AP_PC1 | PC2_COMMIT)))
            added = await cli(["sectors", "add-piece", str(piece_file)], env)
            await probe.wait(lambda: probe.all_proving(1), 120, "the deal sector in Proving")
            listed = json.loads(await cli(["pieces", "list", "--json"], env))
            dropped = await cli(["sectors", "drop-unsealed", "0"], env)
            box_unsealed = any(p.has(FileType.UNSEALED, SectorID(1000, 0))
                               for p in RepoStorage(tmp_path / "box").open_all())
            queued = json.loads(await cli(["sectors", "unseal", "0", "--no-wait", "--json"],
                                          env))
            sector_task = (await probe.client.call("Sectors.Status", [0]))["task"]

            reader: Agent = await nursery.start(functools.partial(
                run_agent, agent_config(repo.api_info(), tmp_path / "reader", "reader",
                                        ALWAYS_ON | {TaskType.UNSEAL})))
            waited = await run_cli(["sectors", "unseal", "0"], env)
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            stored = await remote_cli(["pieces", "get", cid, "-o", str(again), "--json"],
                                      elsewhere, str(repo.api_info()))
            http = await piece_answers(running.url, repo.token(), cid, other_cid)
            await cli(["sectors", "drop-unsealed", "0"], env)
            no_copy = (await piece_answers(running.url, repo.token(), cid, other_cid))["whole"]
            fresh = await run_cli(["pieces", "get", cid, "-o", str(got)], env)
            unknown = await run_cli(["pieces", "get", other_cid, "-o", str(corrupt_out)], env)

            unsealed = sector_file(tmp_path / "reader", FileType.UNSEALED, 0)
            with unsealed.open("r+b") as f:
                f.seek(300)
                byte = f.read(1)
                f.seek(300)
                f.write(bytes([byte[0] ^ 0x01]))
            corrupt = await run_cli(["pieces", "get", cid, "-o", str(corrupt_out)], env)
            status = await probe.client.call("Sectors.Status", [0, True])
            found = await probe.client.call("Storage.Find", [0])
            tasks = await probe.tasks(0)
        for agent in (box, reader):
            agent.stop()
            await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()

    assert f"Piece {cid}" in added
    assert listed == [{"cid": cid, "sector": 0, "index": 0, "offset": 0, "padded_size": 1024,
                       "size": PIECE_SIZE, "state": "Proving", "unsealed": True}]
    assert "unsealed copy dropped from" in dropped and not box_unsealed

    # no agent runs Unseal yet: the request waits and says so; the sector's own task
    # slot is untouched
    assert queued["status"] == "queued" and queued["task"]["short"] == "UNS"
    assert "no connected agent runs Unseal" in queued["waiting"]
    assert sector_task is None

    code, out, err = waited
    assert code == 0, err
    assert out.startswith("sector 0: unsealed copy in ")

    code, out, err = stored
    assert code == 0, err
    answer = json.loads(out)
    assert again.read_bytes() == data and answer["unsealed_now"] is False

    whole = http["whole"]
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["x-sealagent-sector"] == "0"
    assert whole.headers["x-sealagent-path"] in {loc["path_id"] for loc in found}
    assert http["range"].status_code == 206 and http["range"].content == data[100:900]
    assert http["range"].headers["content-range"] == f"bytes 100-899/{PIECE_SIZE}"
    assert http["tail"].status_code == 206 and http["tail"].content == data[-16:]
    assert http["past"].status_code == 416
    assert http["past"].headers["content-range"] == f"bytes */{PIECE_SIZE}"
    assert http["unknown"].status_code == 404
    assert "no sector holds a deal piece" in http["unknown"].json()["error"]
    assert http["post"].status_code == 405
    assert http["anonymous"].status_code == 401
    assert no_copy.status_code == 404 and "has no unsealed copy" in no_copy.json()["error"]

    code, out, err = fresh
    assert code == 0, err
    assert got.read_bytes() == data
    assert "CommP checked" in out and "unsealed now" in out
    assert "has no unsealed copy: unsealing it" in err
    unseal_tasks = [t for t in tasks if t.phase is Phase.UNSEAL]
    assert [t.state.is_final for t in unseal_tasks] == [True, True]

    assert unknown[0] == 1 and f"no sector holds a deal piece with CID {other_cid}" in unknown[2]

    code, out, err = corrupt
    assert code == 1
    assert "CommP check failed" in err and f"not {cid}" in err
    assert not corrupt_out.exists()
    assert not any(p.name.endswith(".part") for p in await trio.Path(tmp_path).iterdir())

    # the unseal ran on reader, which fetched copies of the sealed replica and cache (box
    # keeps its own, and the index both); the sector stayed in Proving and its log tells
    # the story
    assert sector_file(tmp_path / "box", FileType.SEALED, 0).exists()
    assert {(loc["host"], t) for loc in found for t in loc["file_types"]} >= {
        ("box", "sealed"), ("box", "cache"), ("reader", "sealed"), ("reader", "cache")}
    assert status["state"] == "Proving" and status["task"] is None
    kinds = [entry["kind"] for entry in status["log"]]
    assert "UnsealedDropped" in kinds
    story = next(e["message"] for e in status["log"] if e["kind"] == "Unsealed")
    assert "done on reader in " in story and "2032 bytes unsealed" in story
    fetched = [e["message"] for e in status["log"] if e["kind"] == "FileFetched"
               and "Unseal task" in e["message"]]
    assert any(m.startswith("sealed fetched") for m in fetched)
    assert any(m.startswith("cache fetched") for m in fetched)
