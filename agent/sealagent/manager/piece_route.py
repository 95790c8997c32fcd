"""``/piece``: a deal piece's original bytes, streamed over HTTP from an unsealed copy.

Mounted under ``/piece`` of the manager's HTTP server; a request needs a token with the
``read`` permission, as ``Pieces.Read`` does (401 with ``{"error": ...}`` otherwise)::

    GET /piece/{cid}     the piece's unpadded bytes (HTTP Range over them: 206 / 416)

The manager reads the piece's padded span from an indexed unsealed copy (its own, or a
``/remote`` Range read at the holder), unpads it and streams it in chunks of
:data:`STREAM_CHUNK` bytes; memory stays at one chunk whatever the piece's size.  The
answer carries ``X-Sealagent-Sector`` (the sector number) and ``X-Sealagent-Path`` (the
storage path the first chunk came from).  An unknown CID, or a sector without an
unsealed copy, is answered with 404 before any byte is sent; a copy that cannot be read
then with 502.  A failure after the first byte cuts the connection, so the body is short
of ``Content-Length`` and the client sees an incomplete transfer.

Nothing here checks the bytes: like ``Pieces.Read``, the caller checks the piece
commitment (CommP) over the whole piece (``sealagent pieces get`` does before it writes
FILE).
"""

from __future__ import annotations

from typing import Any, Final

import structlog

from sealagent.errors import ManagerError, StorageError
from sealagent.manager.unseal_requests import UnsealRequests
from sealagent.proofs.fr32 import UNPADDED_BLOCK
from sealagent.storage.remote import Emit, byte_range, stream_body
from sealagent.web.asgi import HTTPError, Receive, Scope, Send, require_permission, serve_http
from sealagent.web.auth import TokenVerifier

PIECE_ROUTE: Final = "/piece"
"""Where the manager's HTTP server mounts :class:`PieceHandler`."""
REQUIRED_PERMISSION: Final = "read"
STREAM_CHUNK: Final = 8192 * UNPADDED_BLOCK
"""Piece bytes read, unpadded and sent at a time (whole Fr32 blocks, under 1 MiB)."""

_log = structlog.get_logger(__name__)


class PieceHandler:
    """ASGI app streaming deal pieces (see the module docstring)."""

    def __init__(self, unseals: UnsealRequests, verify: TokenVerifier) -> None:
        self.unseals = unseals
        self.verify = verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request."""
        await serve_http(self._handle, scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await require_permission(self.verify, scope, REQUIRED_PERMISSION)
        if scope["method"] != "GET":
            raise HTTPError(405, f"{scope['method']} is not allowed here",
                            [(b"allow", b"GET")])
        path: str = scope["path"]
        cid = path[len(scope.get("root_path", "")):].strip("/")
        if not cid or "/" in cid:
            raise HTTPError(400, "ask for /piece/<piece CID>")
        try:
            sector, span = self.unseals.locate(cid)
        except ManagerError as exc:
            raise HTTPError(404, str(exc)) from None
        first, last, status, headers = byte_range(scope, span.size)
        end = last + 1
        head = await self._read(cid, first, end)
        headers += [(b"content-length", str(end - first).encode()),
                    (b"x-sealagent-sector", str(sector.number).encode()),
                    (b"x-sealagent-path", str(head["path_id"]).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})

        async def produce(emit: Emit) -> None:
            await emit(head["data"])
            at = first + len(head["data"])
            while at < end:
                try:
                    answer = await self.unseals.read(cid, at, min(STREAM_CHUNK, end - at))
                except (ManagerError, StorageError) as exc:
                    _log.warning("piece stream cut", cid=cid, offset=at, error=str(exc))
                    raise
                await emit(answer["data"])
                at += len(answer["data"])

        await stream_body(receive, send, produce)

    async def _read(self, cid: str, at: int, end: int) -> dict[str, Any]:
        """The first chunk, read before the answer starts so that errors get a status."""
        try:
            return await self.unseals.read(cid, at, min(STREAM_CHUNK, end - at))
        except ManagerError as exc:
            raise HTTPError(404, str(exc)) from None
        except StorageError as exc:
            raise HTTPError(502, f"no unsealed copy could be read: {exc}") from None
