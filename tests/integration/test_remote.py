"""``/remote`` on a real hypercorn server: ranges, tar streams, fetching, auth, traversal."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio

from sealagent.errors import AuthError, SectorFileNotFoundError, StorageError
from sealagent.rpc.asgi import RPCApp
from sealagent.rpc.jsonrpc import Dispatcher, MethodRegistry
from sealagent.rpc.server import start_server
from sealagent.storage.fetch import RemoteClient
from sealagent.storage.paths import LocalPath, init_path
from sealagent.storage.remote import RemoteHandler
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.web.auth import create_token, jwt_verifier
from tests.unit.test_rpc_client import no_leaked_async_generators

SECRET = b"r" * 32
ADMIN = create_token(SECRET, ["read", "write", "sign", "admin"])
SECTOR = SectorID(1000, 3)
SEALED = os.urandom(3 * 1024 * 1024 + 123)


@dataclass
class Host:
    """A serving host with one storage path, and a local path to fetch into."""

    url: str
    source: LocalPath
    dest: LocalPath

    def file_url(self, file_type: str, sector: SectorID = SECTOR) -> str:
        return f"{self.url}/remote/{file_type}/{sector.name}"


@pytest.fixture
async def host(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Host]:
    source = init_path(tmp_path / "src", can_seal=True, can_store=False, path_id="src")
    dest = init_path(tmp_path / "dst", can_seal=True, can_store=False, path_id="dst")
    source.sector_path(FileType.SEALED, SECTOR).write_bytes(SEALED)
    cache = source.sector_path(FileType.CACHE, SECTOR)
    (cache / "sub").mkdir(parents=True)
    (cache / "sc-02-data-tree-d.dat").write_bytes(os.urandom(2 * 1024 * 1024 + 7))
    (cache / "p_aux").write_bytes(b"\x01" * 64)
    (cache / "empty").write_bytes(b"")
    (cache / "sub" / ("long-name-" * 12)).write_bytes(b"nested")
    app = RPCApp(Dispatcher(MethodRegistry()), jwt_verifier(SECRET))
    app.mount("/remote", RemoteHandler(lambda: [source], jwt_verifier(SECRET)))
    server = await start_server(nursery, app)
    yield Host(server.url, source, dest)
    server.stop()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


async def test_range_requests(host: Host) -> None:
    size = len(SEALED)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(headers=headers) as http:
        url = host.file_url("sealed")
        full = await http.get(url)
        assert full.status_code == 200
        assert full.content == SEALED
        assert full.headers["accept-ranges"] == "bytes"
        assert full.headers["content-type"] == "application/octet-stream"
        for spec, first, last in [("10-19", 10, 19), ("-5", size - 5, size - 1),
                                  (f"{size - 3}-", size - 3, size - 1),
                                  (f"100-{size * 2}", 100, size - 1)]:
            part = await http.get(url, headers={"Range": f"bytes={spec}"})
            assert part.status_code == 206, spec
            assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
            assert part.content == SEALED[first:last + 1]
        for bad in (f"bytes={size}-", "bytes=9-3", "bytes=abc", "bytes=0-1,5-6", "items=0-1"):
            refused = await http.get(url, headers={"Range": bad})
            assert refused.status_code == 416, bad
            assert refused.headers["content-range"] == f"bytes */{size}"


async def test_read_range(host: Host) -> None:
    size = len(SEALED)
    url = host.file_url("sealed")
    async with RemoteClient(ADMIN) as client:
        for start, length in [(0, 1), (10, 1000), (size - 7, 7), (1 << 20, 2 << 20)]:
            assert await client.read_range(url, start, length) == SEALED[start:start + length]
        assert await client.read_range(url, 5, 0) == b""
        with pytest.raises(StorageError, match=f"holds 7 of the 8 bytes at {size - 7}"):
            await client.read_range(url, size - 7, 8)
        with pytest.raises(StorageError, match="416"):
            await client.read_range(url, size, 1)
        with pytest.raises(SectorFileNotFoundError):
            await client.read_range(host.file_url("unsealed"), 0, 1)


async def test_stat_and_delete(host: Host) -> None:
    async with RemoteClient(ADMIN) as client:
        sealed = await client.stat(host.file_url("sealed"))
        assert (sealed.size, sealed.is_dir) == (len(SEALED), False)
        cache = await client.stat(host.file_url("cache"))
        assert cache.is_dir and cache.size == 2 * 1024 * 1024 + 7 + 64 + 6
        assert await client.delete(host.file_url("sealed"), keep=["src"]) == []
        assert host.source.has(FileType.SEALED, SECTOR)
        assert await client.delete(host.file_url("sealed")) == ["src"]
        assert not host.source.has(FileType.SEALED, SECTOR)
        with pytest.raises(SectorFileNotFoundError):
            await client.stat(host.file_url("sealed"))
        with pytest.raises(SectorFileNotFoundError):
            await client.delete(host.file_url("sealed"))


async def test_tar_round_trip(host: Host) -> None:
    seen: list[tuple[int, int | None]] = []
    dest = host.dest.sector_path(FileType.CACHE, SECTOR)
    async with RemoteClient(ADMIN) as client:
        received = await client.fetch(host.file_url("cache"), dest,
                                      progress=lambda done, total: seen.append((done, total)))
    source = host.source.sector_path(FileType.CACHE, SECTOR)
    assert tree(dest) == tree(source)
    assert (dest / "sub").is_dir()
    assert received == seen[-1][0] == seen[-1][1]
    assert len(seen) > 1
    assert not (dest.parent / "fetching" / dest.name).exists()


async def test_fetch_file_and_resume_a_partial_download(host: Host) -> None:
    dest = host.dest.sector_path(FileType.SEALED, SECTOR)
    partial = dest.parent / "fetching" / dest.name
    partial.parent.mkdir()
    partial.write_bytes(SEALED[:1_000_000])
    seen: list[tuple[int, int | None]] = []
    async with RemoteClient(ADMIN) as client:
        received = await client.fetch(host.file_url("sealed"), dest,
                                      progress=lambda done, total: seen.append((done, total)))
    assert dest.read_bytes() == SEALED
    assert received == len(SEALED) - 1_000_000
    assert seen[-1] == (len(SEALED), len(SEALED))
    assert seen[0][0] > 1_000_000
    assert not partial.exists()


async def test_a_partial_longer_than_the_source_starts_over(host: Host) -> None:
    dest = host.dest.sector_path(FileType.SEALED, SECTOR)
    partial = dest.parent / "fetching" / dest.name
    partial.parent.mkdir()
    partial.write_bytes(b"x" * (len(SEALED) + 10))
    async with RemoteClient(ADMIN) as client:
        assert await client.fetch(host.file_url("sealed"), dest) == len(SEALED)
    assert dest.read_bytes() == SEALED


class GiveUp(Exception):
    """Raised by a progress callback to abandon a download."""


async def test_a_download_abandoned_mid_body_leaves_no_generator(host: Host) -> None:
    dest = host.dest.sector_path(FileType.SEALED, SECTOR)

    def give_up(done: int, total: int | None) -> None:
        raise GiveUp(f"{done} of {total}")

    async with RemoteClient(ADMIN) as client:
        with no_leaked_async_generators(), pytest.raises(GiveUp):
            await client.fetch(host.file_url("sealed"), dest, progress=give_up)
        kept = (dest.parent / "fetching" / dest.name).stat().st_size
        assert 0 < kept < len(SEALED)
        assert await client.fetch(host.file_url("sealed"), dest) == len(SEALED) - kept
    assert dest.read_bytes() == SEALED


async def test_fetch_errors(host: Host) -> None:
    dest = host.dest.sector_path(FileType.SEALED, SECTOR)
    async with RemoteClient(ADMIN) as client:
        with pytest.raises(SectorFileNotFoundError):
            await client.fetch(host.file_url("sealed", SectorID(1000, 99)), dest)
        dest.write_bytes(b"already here")
        with pytest.raises(StorageError, match="already exists"):
            await client.fetch(host.file_url("sealed"), dest)
    async with RemoteClient(create_token(SECRET, ["read"])) as reader:
        with pytest.raises(AuthError, match="missing admin permission"):
            await reader.stat(host.file_url("sealed"))


async def test_tokens_are_required(host: Host) -> None:
    async with httpx.AsyncClient() as http:
        missing = await http.get(host.file_url("sealed"))
        assert missing.status_code == 401
        assert "missing bearer token" in missing.json()["error"]
        forged = create_token(b"f" * 32, ["admin"])
        bad = await http.get(host.file_url("sealed"), headers={"Authorization": f"Bearer {forged}"})
        assert bad.status_code == 401


async def raw_get(url: str, target: str) -> bytes:
    """Send a request line exactly as written (no client-side path normalisation)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\n"
            "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some():
            data += chunk
    return data


@pytest.mark.parametrize("target", [
    "/remote/sealed/../../etc/passwd",
    "/remote/sealed/%2e%2e%2f%2e%2e%2fsectorstore.json",
    "/remote/cache/s-t01000-3/p_aux",
    "/remote/..%2fsealed/s-t01000-3",
    "/remote/stat/../sealed/s-t01000-3",
    "/remote//sealed/s-t01000-3",
    "/remote/sealed",
])
async def test_path_traversal_is_rejected(host: Host, target: str) -> None:
    response = await raw_get(host.url, target)
    assert response.startswith(b"HTTP/1.1 400"), response[:200]
    assert b"bad path" in response


async def test_parallel_fetch_limit(host: Host) -> None:
    for number in (4, 5, 6):
        host.source.sector_path(FileType.SEALED, SectorID(1000, number)).write_bytes(SEALED)
    limiter = trio.CapacityLimiter(1)
    waiting: list[int] = []

    def progress(done: int, total: int | None) -> None:
        assert limiter.borrowed_tokens == 1
        waiting.append(limiter.statistics().tasks_waiting)

    async with RemoteClient(ADMIN, limiter=limiter) as client, trio.open_nursery() as nursery:
        for number in (4, 5, 6):
            sector = SectorID(1000, number)
            nursery.start_soon(functools.partial(
                client.fetch, host.file_url("sealed", sector),
                host.dest.sector_path(FileType.SEALED, sector), progress=progress))
    assert max(waiting) == 2
    for number in (4, 5, 6):
        assert host.dest.sector_path(FileType.SEALED, SectorID(1000, number)).read_bytes() == SEALED
