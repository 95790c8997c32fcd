"""Fetching sector files from another host's ``/remote`` (see :mod:`.remote`).

:meth:`RemoteClient.fetch` downloads ``http://host:port/remote/<type>/<sector>`` into a
local destination:

* the bytes go to ``<dest's dir>/fetching/<name>`` and are renamed into place only when
  complete (after an fsync), so a half-copied file never looks like a sector file;
* a file download that was cut off resumes where it stopped (``Range: bytes=<n>-``); if
  the server answers the whole file instead, it starts over;
* a directory arrives as a tar stream, unpacked while it streams (in a worker thread fed
  through a bounded channel, so memory stays small); members with absolute names, ``..``
  components, links or device files are refused;
* a ``trio.CapacityLimiter`` (``ParallelFetchLimit``) bounds concurrent downloads, and an
  optional ``progress(done, total)`` callback sees every chunk.

Errors: unreachable host, broken or stalled transfer → RPCTransportError (the partial
file stays for a resume); 401 → AuthError; 404 → SectorFileNotFoundError; anything else
(bad answer, corrupt tar, a destination that already exists) → StorageError.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tarfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final, cast

import httpx
import trio

from sealagent.errors import (
    AuthError,
    RPCTransportError,
    SectorFileNotFoundError,
    StorageError,
)
from sealagent.storage.layout import fetch_temp_path
from sealagent.web.client import CONNECT_TIMEOUT, BearerClient

CHUNK_SIZE: Final = 1024 * 1024
IDLE_TIMEOUT: Final = 60.0
"""Seconds a transfer may stall before it is abandoned."""

_QUEUE_CHUNKS: Final = 8
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]+)-([0-9]+)/([0-9]+)$")

ProgressCallback = Callable[[int, int | None], None]
"""``progress(done, total)``: bytes so far (a resumed file counts what it had) and the
total when known."""


@dataclass(frozen=True)
class RemoteStat:
    """What ``/remote/stat`` says about a sector file."""

    size: int
    is_dir: bool


def stat_url(url: str) -> str:
    """``.../remote/<type>/<sector>`` → ``.../remote/stat/<type>/<sector>``."""
    base, file_type, sector = url.rstrip("/").rsplit("/", 2)
    return f"{base}/stat/{file_type}/{sector}"


class _ChannelReader(io.RawIOBase):
    """A blocking reader (for a worker thread) over chunks arriving on a Trio channel."""

    def __init__(self, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        super().__init__()
        self._receive = receive
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` from the current chunk, waiting for the next one if needed."""
        if not self._chunk:
            try:
                self._chunk = memoryview(trio.from_thread.run(self._receive.receive))
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return 0
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n


def _check_member(member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise StorageError(f"refusing tar member {member.name!r}: unsafe name")
    if not (member.isfile() or member.isdir()):
        raise StorageError(f"refusing tar member {member.name!r}: not a file or directory")


def _extract(reader: _ChannelReader, dest: Path) -> None:
    """Unpack a tar stream into ``dest`` (runs in a worker thread)."""
    # Members are copied out in reads as large as the stream's buffer: smaller reads would
    # each shift the rest of that buffer (typeshed lacks ``copybufsize``).
    options: dict[str, Any] = {"copybufsize": CHUNK_SIZE}
    with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK_SIZE, **options) as archive:
        for member in archive:
            _check_member(member)
            archive.extract(member, dest, filter="data")
    while reader.read(CHUNK_SIZE):  # consume the end-of-archive padding
        continue


def _prepare_temp(tmp: Path, keep_file: bool) -> int:
    """Make room for a download at ``tmp``; returns the bytes of a partial file kept."""
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp)
    elif tmp.exists() and not keep_file:
        tmp.unlink()
    return tmp.stat().st_size if tmp.exists() else 0


def _fsync_tree(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


def _finish(tmp: Path, dest: Path) -> None:
    """Flush a completed download and rename it into place."""
    _fsync_tree(tmp)
    if dest.exists():
        raise StorageError(f"{dest} appeared while it was being fetched")
    os.replace(tmp, dest)


class RemoteClient(BearerClient):
    """Downloads (and stats, deletes) sector files served by ``/remote``."""

    def __init__(self, token: str, *, limiter: trio.CapacityLimiter | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        """``limiter`` caps the downloads at once; ``idle_timeout`` fails a stalled one."""
        super().__init__(token, transport=transport, read_timeout=idle_timeout,
                         headers={"Accept-Encoding": "identity"})
        self.limiter = limiter

    async def stat(self, url: str) -> RemoteStat:
        """Size and kind of the sector file at ``url``."""
        async with self._request("GET", stat_url(url)) as response:
            await response.aread()
        try:
            answer = response.json()
            return RemoteStat(int(answer["size"]), bool(answer["is_dir"]))
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"bad stat answer from {url}: {response.text[:200]!r}") from None

    async def delete(self, url: str, *, keep: Sequence[str] = ()) -> list[str]:
        """Remove the copies at ``url``'s host except in the ``keep`` paths; returns the
        IDs of the paths it was removed from."""
        params = {"keep": ",".join(keep)} if keep else None
        async with self._request("DELETE", url, params=params) as response:
            await response.aread()
        try:
            removed = response.json()["removed"]
        except (ValueError, KeyError, TypeError):
            removed = None
        if not isinstance(removed, list):
            raise StorageError(f"bad delete answer from {url}: {response.text[:200]!r}")
        return [str(r) for r in removed]

    async def read_range(self, url: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` of the sector file at ``url`` (a Range read).

        :raises StorageError: the holder answered fewer bytes (the file is shorter).
        """
        if length <= 0:
            return b""
        headers = {"Range": f"bytes={start}-{start + length - 1}"}
        async with self._request("GET", url, headers=headers) as response, \
                _body(url, response) as chunks:
            data = b"".join([chunk async for chunk in chunks])
        if response.status_code != 206:
            data = data[start:start + length]
        if len(data) != length:
            raise StorageError(f"{url} holds {len(data)} of the {length} bytes at {start}")
        return data

    async def vanilla_proof(self, remote_url: str, sector: str, registered_proof: str,
                            challenges: Sequence[int]) -> Any:
        """Ask the host serving ``remote_url`` (``http://host:port/remote``) for the PoSt
        vanilla proof of ``challenges`` in its stored files of ``sector``; returns the
        answer's JSON (see :mod:`.remote`)."""
        url = f"{remote_url.rstrip('/')}/vanilla/single"
        body = {"sector": sector, "registered_proof": registered_proof,
                "challenges": list(challenges)}
        async with self._request("POST", url, json_body=body) as response:
            await response.aread()
        try:
            return response.json()
        except ValueError:
            raise StorageError(f"bad vanilla proof answer from {url}: "
                               f"{response.text[:200]!r}") from None

    async def fetch(self, url: str, dest: str | Path, *,
                    progress: ProgressCallback | None = None) -> int:
        """Download ``url`` to ``dest`` (a file or a directory); returns bytes received."""
        dest = Path(dest)
        if await trio.to_thread.run_sync(dest.exists):
            raise StorageError(f"cannot fetch into {dest}: it already exists")
        tmp = fetch_temp_path(dest)
        limit = self.limiter if self.limiter is not None else contextlib.nullcontext()
        async with limit:
            offset = await trio.to_thread.run_sync(_prepare_temp, tmp, True)
            received = await self._download(url, tmp, offset, progress)
            await trio.to_thread.run_sync(_finish, tmp, dest)
        return received

    async def save(self, url: str, dest: Path, *,
                   progress: ProgressCallback | None = None) -> tuple[int, httpx.Headers]:
        """Write the body of ``GET url`` (a plain file answer) to ``dest``, created or
        truncated, and fsync it; returns the bytes received and the answer's headers.

        Nothing is renamed or resumed: the caller owns ``dest`` (``pieces get`` checks it
        before renaming it into place).  Errors as for :meth:`fetch`; a body short of its
        ``Content-Length`` is an RPCTransportError.
        """
        async with self._request("GET", url) as response:
            received = await self._receive_file(url, response, dest, 0, progress)
        await trio.to_thread.run_sync(_fsync_tree, dest)
        return received, response.headers

    async def _download(self, url: str, tmp: Path, offset: int,
                        progress: ProgressCallback | None) -> int:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        async with self._request("GET", url, headers=headers, allow=(416,)) as response:
            if response.status_code == 416:
                await trio.to_thread.run_sync(_prepare_temp, tmp, False)
                return await self._download(url, tmp, 0, progress)
            if response.headers.get("content-type") == "application/x-tar":
                await trio.to_thread.run_sync(_prepare_temp, tmp, False)
                return await self._receive_tar(url, response, tmp, progress)
            return await self._receive_file(url, response, tmp, offset, progress)

    async def _receive_file(self, url: str, response: httpx.Response, tmp: Path, offset: int,
                            progress: ProgressCallback | None) -> int:
        if response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match is None or int(match[1]) != offset:
                raise StorageError(f"{url} answered a range that does not continue {tmp}")
            total: int | None = int(match[3])
            mode = "ab"
        else:
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            offset, mode = 0, "wb"
        done = offset
        async with await trio.open_file(tmp, mode) as out, _body(url, response) as chunks:
            async for chunk in chunks:
                await out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done != total:
            raise RPCTransportError(f"download of {url} stopped at {done} of {total} bytes")
        return done - offset

    async def _receive_tar(self, url: str, response: httpx.Response, tmp: Path,
                           progress: ProgressCallback | None) -> int:
        await trio.to_thread.run_sync(tmp.mkdir)
        send, receive = trio.open_memory_channel[bytes](_QUEUE_CHUNKS)
        errors: list[Exception] = []
        received = 0
        length = response.headers.get("content-length")
        total = int(length) if length and length.isdigit() else None

        async def unpack() -> None:
            with receive:
                try:
                    await trio.to_thread.run_sync(_extract, _ChannelReader(receive), tmp)
                except (tarfile.TarError, OSError) as exc:
                    errors.append(StorageError(f"bad tar stream from {url}: {exc}"))
                except StorageError as exc:
                    errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(unpack)
            async with send:
                try:
                    async with _body(url, response) as chunks:
                        async for chunk in chunks:
                            await send.send(chunk)
                            received += len(chunk)
                            if progress is not None:
                                progress(received, total)
                except trio.BrokenResourceError:
                    pass  # the unpacker stopped; it recorded why
                except RPCTransportError as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]
        return received

    @contextlib.asynccontextmanager
    async def _request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                       params: dict[str, str] | None = None, json_body: Any = None,
                       allow: tuple[int, ...] = ()) -> AsyncIterator[httpx.Response]:
        try:
            async with self._http.stream(method, url, headers=headers, params=params,
                                         json=json_body) as response:
                if response.status_code >= 400 and response.status_code not in allow:
                    await response.aread()
                    raise _status_error(url, response)
                yield response
        except httpx.HTTPError as exc:
            raise RPCTransportError(f"cannot reach {url}: {exc or type(exc).__name__}") from None


async def _coalesce(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Join the socket's small reads into chunks of at least CHUNK_SIZE bytes."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) >= CHUNK_SIZE:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


@contextlib.asynccontextmanager
async def _body(url: str, response: httpx.Response) -> AsyncIterator[AsyncIterator[bytes]]:
    """The response body in large chunks, closed on exit, with transport errors mapped.

    (httpx's own fixed-size chunking is avoided: it copies every read through a BytesIO.)
    """
    raw = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())
    try:
        try:
            async with contextlib.aclosing(_coalesce(raw)) as chunks:
                yield chunks
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CONNECT_TIMEOUT):
                await _finish_body(response, raw)
    except httpx.HTTPError as exc:
        raise RPCTransportError(
            f"download of {url} failed: {exc or type(exc).__name__}") from None


async def _finish_body(response: httpx.Response, raw: AsyncIterator[bytes]) -> None:
    """Close ``response`` and run its byte iterator to the end.

    httpx reads a body through a chain of async generators, and closing the outermost one
    leaves the inner ones suspended mid-body; Trio reports each with a ``ResourceWarning``
    when it is garbage collected.  Once the connection is closed, the next read fails in the
    innermost generator and that failure unwinds, and so finishes, the whole chain (after at
    most the few bytes already buffered).
    """
    await response.aclose()
    with contextlib.suppress(httpx.HTTPError, httpx.StreamError):
        async for _ in raw:
            pass


def _status_error(url: str, response: httpx.Response) -> Exception:
    try:
        message = str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        message = response.text[:200]
    if response.status_code == 401:
        return AuthError(f"{url}: {message}")
    if response.status_code == 404:
        return SectorFileNotFoundError(f"{url}: {message}")
    return StorageError(f"{url} answered HTTP {response.status_code}: {message}")
