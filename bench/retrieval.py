"""Retrieval throughput: the steps ``pieces get`` and an Unseal add around the backend.

A manager (real HTTP, real SQLite, on loopback) holds one sector in Proving whose deal
piece fills it, with its unsealed file in the manager's own storage path.  Measured in
the same run, on the same machine, each ``--repeat`` times (median):

- ``pad``: the agent's step after a backend's Unseal, Fr32-padding the unpadded output
  into the sector's unsealed file (``worker/unseal_output.write_unsealed``);
- ``pieces-read``: the whole piece through ``Pieces.Read`` in 1 MiB chunks (JSON-RPC,
  base64, the manager's read and unpad), as ``pieces get`` read it before it streamed;
- ``piece-stream``: the whole piece streamed by ``GET /piece/<cid>`` into a file (fsynced),
  as ``pieces get`` reads it now (the manager's read and unpad, raw bytes over HTTP);
- ``remote-read``: the same padded span with one ``/remote`` Range read (the baseline:
  raw bytes over HTTP, nothing else);
- ``commp``: the piece commitment of the piece, ``pieces get``'s check;
- ``client``/``client-default``: making (and closing) 10 HTTP clients as the manager and
  the CLI make them (one shared TLS context), and as httpx makes them by default (loading
  the CA bundle each time): the manager makes one per ``Pieces.Read`` call.

    python bench/retrieval.py --sector-size 8MiB --repeat 3 --json results/retrieval-<date>.json

Prints a table (MB/s of piece bytes, ``pieces-read`` and ``piece-stream`` against
``remote-read``, and ``pieces-read`` against ``piece-stream``).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import functools
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trio

from sealagent.manager import sector_store
from sealagent.manager.config import APIConfig, ManagerConfig, MinerConfig, StorageConfig
from sealagent.manager.db import Database
from sealagent.manager.fsm import SectorInfo, SectorPiece, SectorState
from sealagent.manager.piece_route import PIECE_ROUTE
from sealagent.manager.repo import MinerRepo
from sealagent.manager.server import serve_manager
from sealagent.proofs.fr32 import pad, to_unpadded_size
from sealagent.proofs.pieces import generate_piece_commitment
from sealagent.rpc.client import open_rpc_client
from sealagent.storage.fetch import RemoteClient
from sealagent.vocab.registry import default_proof, parse_sector_size
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.web.client import BearerClient
from sealagent.worker.unseal_output import write_unsealed

CHUNK = 1 << 20


def _sector(proof: int, cid: str, size: int) -> SectorInfo:
    piece = SectorPiece(size, cid, deal=True, source="s-t01000-0", added=True)
    return SectorInfo(0, proof, SectorState.PROVING, (piece,), ticket="ab" * 32,
                      comm_d=cid, comm_r="bagboea4seaq")


async def _timed(step: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        await step()
        seconds.append(time.perf_counter() - start)
    return seconds


async def measure(root: Path, sector_size: int, repeat: int) -> dict[str, list[float]]:
    """Seconds of each step, ``repeat`` times."""
    proof = default_proof(sector_size)
    size = to_unpadded_size(sector_size)
    data = os.urandom(size)
    cid = generate_piece_commitment(data, size).cid
    repo = MinerRepo(root / "miner")
    repo.init(ManagerConfig(api=APIConfig(listen_address="/ip4/127.0.0.1/tcp/0/http"),
                            miner=MinerConfig(sector_size=sector_size),
                            storage=StorageConfig(local_worker=False)))
    unsealed = repo.root / FileType.UNSEALED.dir_name / SectorID(1000, 0).name
    unsealed.parent.mkdir(exist_ok=True)
    unsealed.write_bytes(pad(data))
    db = await Database.open(repo.db_file)
    await db.transaction(lambda tx: sector_store.save_sector(
        tx, _sector(proof.value, cid, sector_size), 1.0))
    await db.aclose()
    unpadded = root / "unpadded"
    scratch = root / "unsealed-again"
    received_file = root / "piece-received"

    async def pad_step() -> None:
        await trio.to_thread.run_sync(unpadded.write_bytes, data)
        await trio.to_thread.run_sync(write_unsealed, unpadded, scratch, sector_size)

    results: dict[str, list[float]] = {"pad": await _timed(pad_step, repeat)}
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        info = repo.api_info()
        async with open_rpc_client(info) as client, RemoteClient(info.token) as remote:
            async def rpc_read() -> None:
                got = bytearray()
                for offset in range(0, size, CHUNK):
                    answer = await client.call("Pieces.Read",
                                               [cid, offset, min(CHUNK, size - offset)])
                    got += base64.b64decode(answer["data"])
                assert bytes(got) == data, "Pieces.Read gave other bytes"

            async def piece_stream() -> None:
                received, _ = await remote.save(f"{running.url}{PIECE_ROUTE}/{cid}", received_file)
                assert received == size, "GET /piece sent another size"

            async def remote_read() -> None:
                url = f"{running.url}/remote/unsealed/{SectorID(1000, 0).name}"
                assert len(await remote.read_range(url, 0, sector_size)) == sector_size

            async def commp() -> None:
                found = await trio.to_thread.run_sync(generate_piece_commitment, data, size)
                assert found.cid == cid

            results["pieces-read"] = await _timed(rpc_read, repeat)
            results["piece-stream"] = await _timed(piece_stream, repeat)
            assert received_file.read_bytes() == data, "GET /piece gave other bytes"
            results["remote-read"] = await _timed(remote_read, repeat)
            results["commp"] = await _timed(commp, repeat)
        running.stop()
        nursery.cancel_scope.cancel()

    async def clients(make: Callable[[], Any]) -> None:
        for _ in range(10):
            await make().aclose()

    results["client"] = await _timed(lambda: clients(lambda: BearerClient("t")), repeat)
    results["client-default"] = await _timed(lambda: clients(httpx.AsyncClient), repeat)
    return results


def main() -> None:
    """Run the measurements, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sector-size", default="8MiB", help="sector size (default 8MiB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    sector_size = parse_sector_size(args.sector_size)
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as tmp:
        seconds = trio.run(measure, Path(tmp), sector_size, args.repeat)
    size = to_unpadded_size(sector_size)
    median = {step: statistics.median(s) for step, s in seconds.items()}
    print(f"{'step':<14} {'median s':>9} {'MB/s':>9}   ({size} piece bytes, "
          f"{args.repeat} runs)")
    for step, value in median.items():
        rate = "" if step.startswith("client") else f"{size / value / 1e6:>9.1f}"
        print(f"{step:<14} {value:>9.3f} {rate}")
    ratio = median["pieces-read"] / median["remote-read"]
    print(f"pieces-read takes {ratio:.1f}x the time of one raw /remote Range read")
    stream = median["piece-stream"] / median["remote-read"]
    print(f"piece-stream takes {stream:.1f}x the time of one raw /remote Range read")
    speedup = median["pieces-read"] / median["piece-stream"]
    print(f"piece-stream is {speedup:.1f}x as fast as pieces-read")
    clients = median["client-default"] / median["client"]
    print(f"a default httpx client takes {clients:.1f}x the time of one sharing the context")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": platform.node(), "cpus": os.cpu_count(),
            "sector_size": sector_size, "piece_bytes": size, "repeat": args.repeat,
            "seconds": seconds, "median_s": median,
            "mb_per_s": {k: size / v / 1e6 for k, v in median.items()
                         if not k.startswith("client")},
            "pieces_read_over_remote_read": ratio,
            "piece_stream_over_remote_read": stream,
            "pieces_read_over_piece_stream": speedup,
            "default_client_over_shared_context": clients}, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
