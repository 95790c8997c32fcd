"""``/remote``: serving this host's sector files to the manager and the other agents.

Mounted under ``/remote`` of the host's HTTP server; every request needs a token with the
``admin`` permission (401 with ``{"error": ...}`` otherwise)::

    GET    /remote/{file_type}/{sector}       a file (HTTP Range: 206 / 416), or a
                                              directory as a tar stream (no Range)
    GET    /remote/stat/{file_type}/{sector}  {"size": n, "is_dir": bool}
    DELETE /remote/{file_type}/{sector}?keep=<path id>,...
                                              remove the local copies, except in the
                                              listed paths -> {"removed": [path ids]}
    POST   /remote/vanilla/single             {"sector", "registered_proof", "challenges"}
                                              -> the sector's PoSt vanilla proof of those
                                              challenges, from its sealed file and cache
                                              here (:mod:`sealagent.proofs.post`)

A vanilla proof request names the sector (``s-t01000-3``), its registered seal proof
(name or id) and at most :data:`MAX_CHALLENGES` node indexes.  The answer is rust's
``SectorProof`` in serde JSON (``{"inclusion_proofs", "comm_c", "comm_r_last"}``); a
malformed request is answered with 400 (413 over 64 KiB), missing files with 404, and
files that cannot answer (wrong size, damaged, sealed nodes that do not hash to
tree-r-last) with 422, each with ``{"error": ...}`` saying which challenge and which file.

``file_type`` is a type name (``unsealed``, ``sealed``, ``cache``, ``update``,
``update-cache``, ``piece``) and ``sector`` a sector name (``s-t01000-3``); any other
path, such as one with ``..``, is refused with 400 before the filesystem is touched.
Sector names take ASCII digits only, each part within 64 bits (400 otherwise).  Nothing
outside a storage path is served, listed or deleted: a symbolic link in place of a type
directory or a sector file is answered with 403, and links inside a directory are left
out of its tar stream.

Directories are streamed as a POSIX (pax) tar of their regular files and subdirectories,
names relative to the directory; the length is computed up front and sent as
``Content-Length`` so that a receiver can tell a complete archive from a cut one.  Bodies
are streamed in chunks and stop as soon as the client disconnects.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog
import trio

from sealagent.errors import (
    ConfigError,
    LinkRefusedError,
    ProofsError,
    StorageError,
    UnknownProofError,
)
from sealagent.storage.paths import LocalPath
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.web.asgi import (
    HTTPError,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    require_permission,
    send_json,
    serve_http,
)
from sealagent.web.auth import TokenVerifier

CHUNK_SIZE: Final = 1024 * 1024
"""Bytes per body chunk."""

TAR_BLOCK: Final = tarfile.BLOCKSIZE
REQUIRED_PERMISSION: Final = "admin"
VANILLA_PATH: Final = "/vanilla/single"
"""Where vanilla proofs of a stored sector are asked for, under the mount."""
MAX_CHALLENGES: Final = 1024
"""The most challenges one vanilla proof request may carry."""
_MAX_REQUEST_BYTES: Final = 64 * 1024

Emit = Callable[[bytes], Awaitable[None]]
_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _TarEntry:
    """One member of a directory's tar stream."""

    header: bytes
    source: Path | None
    size: int

    @property
    def length(self) -> int:
        """Bytes this member takes in the archive (header, data, padding)."""
        return len(self.header) + -(-self.size // TAR_BLOCK) * TAR_BLOCK


def parse_range(value: str, size: int) -> tuple[int, int]:
    """``(first, last)`` byte positions (inclusive) of a single ``bytes=`` range.

    Raises ConfigError for a malformed, multiple or unsatisfiable range.
    """
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise ConfigError(f"unsupported range {value!r}: only one bytes range is served")
    first_text, dash, last_text = spec.strip().partition("-")
    if not (first_text + last_text).isascii():
        raise ConfigError(f"malformed range {value!r}")
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        raise ConfigError(f"malformed range {value!r}")
    if not first_text:
        if not last_text.isdigit() or int(last_text) == 0 or size == 0:
            raise ConfigError(f"unsatisfiable range {value!r} for {size} bytes")
        return max(0, size - int(last_text)), size - 1
    if last_text and not last_text.isdigit():
        raise ConfigError(f"malformed range {value!r}")
    first = int(first_text)
    last = size - 1 if not last_text else min(int(last_text), size - 1)
    if first >= size or (last_text and int(last_text) < first):
        raise ConfigError(f"unsatisfiable range {value!r} for {size} bytes")
    return first, last


def _parse_target(rel_path: str) -> tuple[bool, FileType, SectorID]:
    """``(is_stat, file_type, sector)`` of a request path relative to the mount."""
    segments = rel_path.split("/")[1:] if rel_path.startswith("/") else []
    is_stat = len(segments) == 3 and segments[0] == "stat"
    if is_stat:
        segments = segments[1:]
    if len(segments) != 2:
        raise HTTPError(400, f"bad path {rel_path!r}: expected /[stat/]<file type>/<sector>")
    try:
        return is_stat, FileType.parse(segments[0]), SectorID.parse(segments[1])
    except ConfigError as exc:
        raise HTTPError(400, f"bad path {rel_path!r}: {exc}") from None


def _parse_vanilla_request(body: bytes | None) -> tuple[SectorID, RegisteredSealProof,
                                                        list[int]]:
    """``(sector, registered proof, challenges)`` of a vanilla proof request body."""
    if body is None:
        raise HTTPError(413, f"a vanilla proof request is at most {_MAX_REQUEST_BYTES} bytes")
    try:
        request = json.loads(body)
        sector = SectorID.parse(str(request["sector"]))
        proof = resolve_proof(request["registered_proof"])
        challenges = request["challenges"]
    except (ValueError, KeyError, TypeError, ConfigError, UnknownProofError) as exc:
        raise HTTPError(400, f"bad vanilla proof request: {exc}") from None
    if not isinstance(challenges, list) or not 0 < len(challenges) <= MAX_CHALLENGES or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in challenges):
        raise HTTPError(400, f"challenges must be a list of 1 to {MAX_CHALLENGES} node indexes")
    return sector, proof, challenges


def _tar_plan(root: Path) -> list[_TarEntry]:
    """The members of ``root``'s tar stream: directories and regular files, sorted.

    Symbolic links and special files are left out (``lstat`` sees them as such, and
    ``os.walk`` does not descend into linked directories).
    """
    entries: list[_TarEntry] = []
    for parent, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            path = Path(parent, name)
            st = path.lstat()
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.mtime, info.mode = int(st.st_mtime), stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
            else:
                _log.warning("not serving a link or special file", path=str(path))
                continue
            header_bytes = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            entries.append(_TarEntry(header_bytes, path if info.isfile() else None, info.size))
    return entries


def _tree_size(path: Path) -> int:
    """Apparent size of a file, or of the regular files under a directory."""
    if not path.is_dir():
        return path.stat().st_size
    return sum(e.size for e in _tar_plan(path))


def byte_range(scope: Scope, size: int) -> tuple[int, int, int, list[tuple[bytes, bytes]]]:
    """For a request of ``size`` bytes: ``(first, last, status, headers)``, the whole body
    with 200 or its one ``Range`` with 206 and ``Content-Range`` (HTTPError 416 for a range
    :func:`parse_range` refuses).  The headers lack only ``Content-Length``."""
    headers = [(b"content-type", b"application/octet-stream"), (b"accept-ranges", b"bytes")]
    requested = header(scope, b"range")
    if requested is None:
        return 0, size - 1, 200, headers
    try:
        first, last = parse_range(requested, size)
    except ConfigError as exc:
        raise HTTPError(416, str(exc), [(b"content-range", f"bytes */{size}".encode())]) \
            from None
    headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
    return first, last, 206, headers


async def _copy_range(path: Path, first: int, count: int, emit: Emit) -> None:
    """Send ``count`` bytes of ``path`` from offset ``first``."""
    async with await trio.open_file(path, "rb") as source:
        await source.seek(first)
        while count > 0:
            chunk = await source.read(min(CHUNK_SIZE, count))
            if not chunk:
                raise StorageError(f"{path} shrank while it was being sent")
            await emit(chunk)
            count -= len(chunk)


async def _emit_tar(entries: Sequence[_TarEntry], emit: Emit) -> None:
    """Send a tar stream of ``entries``, ending with the two zero blocks."""
    for entry in entries:
        await emit(entry.header)
        if entry.source is not None:
            await _copy_range(entry.source, 0, entry.size, emit)
            padding = entry.length - len(entry.header) - entry.size
            if padding:
                await emit(bytes(padding))
    await emit(bytes(2 * TAR_BLOCK))


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        continue
    scope.cancel()


class RemoteHandler:
    """ASGI app serving the sector files of this host's storage paths."""

    def __init__(self, paths: Callable[[], Sequence[LocalPath]], verify: TokenVerifier) -> None:
        self.paths = paths
        self.verify = verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request (see the module docstring)."""
        await serve_http(self._handle, scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await require_permission(self.verify, scope, REQUIRED_PERMISSION)
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        rel_path = path[len(root_path):] if path.startswith(root_path) else path
        method = scope["method"]
        if rel_path == VANILLA_PATH:
            if method != "POST":
                raise HTTPError(405, f"{method} is not allowed here", [(b"allow", b"POST")])
            await self._vanilla_proof(receive, send)
            return
        is_stat, file_type, sector = _parse_target(rel_path)
        if method == "GET" and is_stat:
            location = await self._find(file_type, sector)
            size = await trio.to_thread.run_sync(_tree_size, location)
            await send_json(send, 200, {"size": size, "is_dir": location.is_dir()})
        elif method == "GET":
            location = await self._find(file_type, sector)
            if location.is_dir():
                await self._send_tar(location, receive, send)
            else:
                await self._send_file(location, scope, receive, send)
        elif method == "DELETE" and not is_stat:
            await self._delete(file_type, sector, scope, send)
        else:
            raise HTTPError(405, f"{method} is not allowed here",
                             [(b"allow", b"GET" if is_stat else b"GET, DELETE")])

    async def _vanilla_proof(self, receive: Receive, send: Send) -> None:
        sector, proof, challenges = _parse_vanilla_request(
            await read_body(receive, _MAX_REQUEST_BYTES))
        sealed = await self._find(FileType.SEALED, sector)
        cache = await self._find(FileType.CACHE, sector)
        from sealagent.proofs.post import generate_sector_proof  # numpy: only when asked

        try:
            answer = await trio.to_thread.run_sync(
                generate_sector_proof, proof, cache, sealed, challenges)
        except (ProofsError, OSError) as exc:
            _log.warning("cannot prove a stored sector", sector=sector.name, error=str(exc))
            raise HTTPError(422, f"{sector.name}: {exc}") from None
        await send_json(send, 200, answer.to_json())

    async def _find(self, file_type: FileType, sector: SectorID) -> Path:
        for local in self.paths():
            candidate = await _locate(local, file_type, sector)
            if candidate is not None:
                return candidate
        raise HTTPError(404, f"no {file_type.dir_name} file of {sector} here")

    async def _send_file(self, path: Path, scope: Scope, receive: Receive, send: Send) -> None:
        size = (await trio.to_thread.run_sync(path.stat)).st_size
        first, last, status, headers = byte_range(scope, size)
        count = last - first + 1
        headers.append((b"content-length", str(count).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await stream_body(receive, send, lambda emit: _copy_range(path, first, count, emit))

    async def _send_tar(self, path: Path, receive: Receive, send: Send) -> None:
        entries = await trio.to_thread.run_sync(_tar_plan, path)
        length = sum(e.length for e in entries) + 2 * TAR_BLOCK
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/x-tar"),
            (b"content-length", str(length).encode()),
        ]})
        await stream_body(receive, send, lambda emit: _emit_tar(entries, emit))

    async def _delete(self, file_type: FileType, sector: SectorID, scope: Scope,
                      send: Send) -> None:
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        keep = {i for value in query.get("keep", []) for i in value.split(",") if i}
        held = [p for p in self.paths() if await _locate(p, file_type, sector) is not None]
        if not held:
            raise HTTPError(404, f"no {file_type.dir_name} file of {sector} here")
        removed = []
        for local in held:
            if local.id not in keep:
                await trio.to_thread.run_sync(local.remove, file_type, sector)
                removed.append(local.id)
        await send_json(send, 200, {"removed": removed})


async def _locate(local: LocalPath, file_type: FileType, sector: SectorID) -> Path | None:
    """``local.locate`` off the event loop; a link in the way is answered with 403."""
    try:
        return await trio.to_thread.run_sync(local.locate, file_type, sector)
    except LinkRefusedError as exc:
        _log.warning("refused a link in a storage path", error=str(exc))
        raise HTTPError(403, f"not serving {file_type.dir_name} of {sector}: a symbolic link "
                              "stands in its place") from None


async def stream_body(receive: Receive, send: Send,
                      produce: Callable[[Emit], Awaitable[None]]) -> None:
    """Send the body ``produce`` emits; stop early if the client goes away."""

    async def emit(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
        await produce(emit)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        nursery.cancel_scope.cancel()
