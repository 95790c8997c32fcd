"""Small ASGI helpers: headers, bearer tokens, bodies and JSON responses.

Shared by the JSON-RPC app (:mod:`sealagent.rpc.asgi`), the storage endpoint
(:mod:`sealagent.storage.remote`), the manager's piece endpoint
(:mod:`sealagent.manager.piece_route`) and the metrics endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sealagent.errors import AuthError
from sealagent.web.auth import TokenVerifier

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

def header(scope: Scope, name: bytes) -> str | None:
    """The value of request header ``name`` (lower-case bytes), if present."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def bearer_token(scope: Scope) -> str:
    """The token of an ``Authorization: Bearer`` header ("" when there is none)."""
    value = header(scope, b"authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def authorize(verify: TokenVerifier, scope: Scope) -> frozenset[str]:
    """The permissions of the request's bearer token; AuthError when refused."""
    token = bearer_token(scope)
    if not token:
        raise AuthError("missing bearer token")
    return await verify(token)


class HTTPError(Exception):
    """An error a handler answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or []


async def serve_http(handle: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``handle`` for an HTTP request (other scopes are ignored); an HTTPError it raises
    is answered with its status and ``{"error": message}``."""
    if scope["type"] != "http":
        return
    try:
        await handle(scope, receive, send)
    except HTTPError as exc:
        await send_json(send, exc.status, {"error": exc.message}, exc.headers)


async def require_permission(verify: TokenVerifier, scope: Scope, permission: str) -> None:
    """Refuse (HTTPError 401) a request whose bearer token is missing, invalid or lacks
    ``permission``."""
    try:
        allowed = await authorize(verify, scope)
    except AuthError as exc:
        raise HTTPError(401, f"unauthorized: {exc}", [(b"www-authenticate", b"Bearer")]) \
            from None
    if permission not in allowed:
        raise HTTPError(401, f"unauthorized: missing {permission} permission")


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """Read the whole request body; ``None`` when it is larger than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_bytes(send: Send, status: int, body: bytes, content_type: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a complete response."""
    head = [(b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, obj: Any,
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send ``obj`` as a JSON response."""
    await send_bytes(send, status, json.dumps(obj).encode(), "application/json", headers)


async def lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge the ASGI lifespan protocol (nothing to start or stop)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
