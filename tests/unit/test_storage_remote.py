"""``/remote`` pieces in process: range parsing, disconnects, unsafe or cut tar streams."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import httpx
import pytest
import trio

from sealagent.errors import ConfigError, RPCTransportError, StorageError
from sealagent.proofs.post import (
    SectorPoStProof,
    fallback_challenges,
    fresh_randomness,
    verify_sector_proof,
)
from sealagent.storage.fetch import RemoteClient, stat_url
from sealagent.storage.paths import init_path
from sealagent.storage.remote import CHUNK_SIZE, RemoteHandler, parse_range
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.web.asgi import Message
from sealagent.web.auth import create_token, jwt_verifier
from tests.unit.test_seal import seal_sector

SECRET = b"t" * 32
TOKEN = create_token(SECRET, ["admin"])
URL = "http://peer/remote/cache/s-t01000-1"


@pytest.mark.parametrize(("spec", "expected"), [
    ("bytes=0-0", (0, 0)), ("bytes=5-", (5, 9)), ("bytes=-3", (7, 9)), ("bytes=-30", (0, 9)),
    ("bytes=2-100", (2, 9)), (" Bytes = 1-2 ", (1, 2)),
])
def test_parse_range(spec: str, expected: tuple[int, int]) -> None:
    assert parse_range(spec, 10) == expected


@pytest.mark.parametrize("spec", [
    "bytes=10-", "bytes=5-4", "bytes=-0", "bytes=-", "bytes=a-b", "bytes=1-2,4-5", "lines=1-2",
    "bytes=1-x", "bytes",
])
def test_parse_range_refusals(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_range(spec, 10)


def test_stat_url() -> None:
    assert stat_url(URL) == "http://peer/remote/stat/cache/s-t01000-1"


async def test_streaming_stops_when_the_client_disconnects(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    size = 16 * CHUNK_SIZE
    path.sector_path(FileType.SEALED, SectorID(1000, 1)).write_bytes(bytes(size))
    handler = RemoteHandler(lambda: [path], jwt_verifier(SECRET))
    scope = {"type": "http", "method": "GET", "path": "/remote/sealed/s-t01000-1",
             "root_path": "/remote", "query_string": b"",
             "headers": [(b"authorization", f"Bearer {TOKEN}".encode())]}
    first_chunk = trio.Event()
    requested = False
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await first_chunk.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            first_chunk.set()

    with trio.fail_after(5):
        await handler(scope, receive, send)
    assert sent[0]["status"] == 200
    body = sum(len(m["body"]) for m in sent[1:])
    assert 0 < body < size
    assert all(m["more_body"] for m in sent[1:])


async def test_the_handler_accepts_only_tokens_its_verifier_accepts(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    path.sector_path(FileType.SEALED, SectorID(1000, 1)).write_bytes(b"abc")
    handler = RemoteHandler(lambda: [path], jwt_verifier(SECRET))
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
        ok = await http.get("/sealed/s-t01000-1", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.content == b"abc"
        other = create_token(b"o" * 32, ["admin"], expires_in=60)
        refused = await http.get("/sealed/s-t01000-1", headers={"Authorization": f"Bearer {other}"})
        assert refused.status_code == 401
        post = await http.post("/sealed/s-t01000-1", headers={"Authorization": f"Bearer {TOKEN}"})
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, DELETE"
        stat_delete = await http.delete("/stat/sealed/s-t01000-1",
                                        headers={"Authorization": f"Bearer {TOKEN}"})
        assert stat_delete.status_code == 405


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> tuple[tarfile.TarInfo,
                                                                                  bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data)
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    return info, data


def serving(body: bytes) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/x-tar"})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("members", "message"), [
    ([member("ok", b"1"), member("../escape", b"2")], "unsafe name"),
    ([member("/etc/cron.d/x", b"2")], "unsafe name"),
    ([member("a/../../b", b"2")], "unsafe name"),
    ([member("link", kind=tarfile.SYMTYPE)], "not a file or directory"),
    ([member("dev", kind=tarfile.CHRTYPE)], "not a file or directory"),
])
async def test_unsafe_tar_members_are_refused(tmp_path: Path, members: list[tuple[
        tarfile.TarInfo, bytes]], message: str) -> None:
    dest = tmp_path / "cache" / "s-t01000-1"
    async with RemoteClient(TOKEN, transport=serving(tar_bytes(*members))) as client:
        with pytest.raises(StorageError, match=message):
            await client.fetch(URL, dest)
    assert not dest.exists()
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "cache" / "escape").exists()


async def test_a_cut_tar_stream_is_an_error(tmp_path: Path) -> None:
    body = tar_bytes(member("big", b"z" * 50_000))[:20_000]
    dest = tmp_path / "cache" / "s-t01000-1"
    async with RemoteClient(TOKEN, transport=serving(body)) as client:
        with pytest.raises(StorageError, match="bad tar stream"):
            await client.fetch(URL, dest)
    assert not dest.exists()


async def test_unreachable_peer_is_a_transport_error(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with RemoteClient(TOKEN, transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(RPCTransportError, match="cannot reach"):
            await client.fetch(URL, tmp_path / "x")


def _get(handler: RemoteHandler, path: str, method: str = "GET") -> httpx.Response:
    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
            return await http.request(method, path,
                                      headers={"Authorization": f"Bearer {TOKEN}"})

    return trio.run(request)


def test_links_in_place_of_sector_files_are_never_followed(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    secret = tmp_path / "secret"
    secret.write_bytes(b"jwt secret")
    keystore = tmp_path / "keystore"
    keystore.mkdir()
    (keystore / "token").write_bytes(b"jwt secret")
    path.sector_path(FileType.SEALED, SectorID(1000, 77)).symlink_to(secret)
    path.sector_path(FileType.CACHE, SectorID(1000, 78)).symlink_to(keystore)
    handler = RemoteHandler(lambda: [path], jwt_verifier(SECRET))
    for url in ("/sealed/s-t01000-77", "/stat/sealed/s-t01000-77", "/cache/s-t01000-78",
                "/stat/cache/s-t01000-78"):
        answer = _get(handler, url)
        assert answer.status_code == 403, url
        assert b"jwt secret" not in answer.content
        assert "link" in answer.json()["error"]
    assert _get(handler, "/cache/s-t01000-78", "DELETE").status_code == 403
    assert (keystore / "token").exists() and secret.exists()
    assert path.sectors() == {}


def test_a_linked_file_type_directory_is_never_followed(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "s-t01000-5").write_bytes(b"outside")
    sealed_dir = path.root / FileType.SEALED.dir_name
    sealed_dir.rmdir()
    sealed_dir.symlink_to(outside)
    handler = RemoteHandler(lambda: [path], jwt_verifier(SECRET))
    assert _get(handler, "/sealed/s-t01000-5").status_code == 403
    assert _get(handler, "/sealed/s-t01000-5", "DELETE").status_code == 403
    assert (outside / "s-t01000-5").exists()
    with pytest.raises(StorageError, match="link"):
        path.remove(FileType.SEALED, SectorID(1000, 5))


@pytest.mark.parametrize("name", ["s-t01000-0%0a", "s-t01000-%D9%A0", "s-t0%D9%A1-0",
                                  "s-t01000-" + "9" * 300, "s-t0" + "9" * 300 + "-1",
                                  "s-t01000-18446744073709551616"])
def test_sector_names_take_ascii_digits_of_a_bounded_size(tmp_path: Path, name: str) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    path.sector_path(FileType.SEALED, SectorID(1000, 0)).write_bytes(b"zero")
    handler = RemoteHandler(lambda: [path], jwt_verifier(SECRET))
    answer = _get(handler, f"/sealed/{name}")
    assert answer.status_code == 400
    assert b"zero" not in answer.content


def _vanilla(handler: RemoteHandler, body: object, token: str = TOKEN,
             method: str = "POST") -> httpx.Response:
    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
            return await http.request(method, "/vanilla/single", json=body,
                                      headers={"Authorization": f"Bearer {token}"})

    return trio.run(request)


def test_vanilla_proofs_are_served_from_the_stored_files(tmp_path: Path) -> None:
    proof = RegisteredSealProof.StackedDrg2KiBV1_1
    sealed = seal_sector(proof, tmp_path / "seal", sector_id=4, commit=False)
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    sector = SectorID(1000, 4)
    shutil.copy(sealed.sealed, path.sector_path(FileType.SEALED, sector))
    shutil.copytree(sealed.cache, path.sector_path(FileType.CACHE, sector))
    handler = RemoteHandler(lambda: [path], jwt_verifier(SECRET))
    challenges = fallback_challenges(proof, fresh_randomness(), 4)
    request = {"sector": "s-t01000-4", "registered_proof": proof.name, "challenges": challenges}

    answer = _vanilla(handler, request)
    assert answer.status_code == 200
    verify_sector_proof(SectorPoStProof.from_json(answer.json()), registered_proof=proof,
                        comm_r=sealed.pc2.comm_r, challenges=challenges)
    assert _vanilla(handler, {**request, "registered_proof": int(proof)}).status_code == 200

    assert _vanilla(handler, request, create_token(SECRET, ["read"])).status_code == 401
    assert _vanilla(handler, request, method="GET").headers["allow"] == "POST"
    for bad in ({**request, "challenges": []}, {**request, "challenges": [True]},
                {**request, "challenges": list(range(2000))}, {**request, "sector": "x"},
                {**request, "registered_proof": "nope"}, {"sector": "s-t01000-4"}, [1]):
        refused = _vanilla(handler, bad)
        assert refused.status_code == 400, bad
        assert "error" in refused.json()
    missing = _vanilla(handler, {**request, "sector": "s-t01000-5"})
    assert missing.status_code == 404
    outside = _vanilla(handler, {**request, "challenges": [64]})
    assert outside.status_code == 422 and "outside the sector" in outside.json()["error"]

    with path.sector_path(FileType.SEALED, sector).open("r+b") as f:
        f.write(b"\x01")
    damaged = _vanilla(handler, request)
    assert damaged.status_code == 422
    assert "challenge 0" in damaged.json()["error"]
    assert "the sealed file" in damaged.json()["error"]
