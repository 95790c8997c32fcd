"""The HTTP side of the API: a bare ASGI app serving ``POST /rpc/v0`` and mounted apps.

:class:`RPCApp` authenticates the ``Authorization: Bearer`` token of every JSON-RPC
request, reads the body up to a size limit and hands it to a
:class:`~sealagent.rpc.jsonrpc.Dispatcher`.  Other ASGI apps are mounted under a path
prefix (``/remote``, ``/debug/metrics``); a mounted app sees the prefix in
``scope["root_path"]`` and the full path in ``scope["path"]``, as Starlette expects.

HTTP statuses: 200 for every JSON-RPC answer (errors included), 204 when a request held
only notifications, 401 for a missing or invalid token (with a JSON-RPC error body, code
1), 413 for a body over the limit, 405 for another method than POST, 404 elsewhere.

The ASGI plumbing it uses (:func:`~sealagent.web.asgi.send_json`,
:func:`~sealagent.web.asgi.authorize`, ...) is in :mod:`sealagent.web.asgi`.
"""

from __future__ import annotations

from typing import Final

from sealagent.errors import AuthError, ConfigError
from sealagent.rpc.jsonrpc import AUTH_ERROR, INVALID_REQUEST, Dispatcher, error_response
from sealagent.web.asgi import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    authorize,
    header,
    lifespan,
    read_body,
    send_bytes,
    send_json,
)
from sealagent.web.auth import TokenVerifier

RPC_PATH: Final = "/rpc/v0"
DEFAULT_MAX_BODY: Final = 16 * 1024 * 1024
"""Largest JSON-RPC request body accepted, in bytes."""



class RPCApp:
    """ASGI app: JSON-RPC on ``POST /rpc/v0`` plus apps mounted under path prefixes."""

    def __init__(self, dispatcher: Dispatcher, verify: TokenVerifier, *,
                 max_body: int = DEFAULT_MAX_BODY) -> None:
        self.dispatcher = dispatcher
        self.verify = verify
        self.max_body = max_body
        self._mounts: list[tuple[str, ASGIApp]] = []

    def mount(self, prefix: str, app: ASGIApp) -> None:
        """Serve ``app`` for every path under ``prefix`` (e.g. ``/remote``)."""
        if not prefix.startswith("/") or prefix.endswith("/") or prefix == RPC_PATH:
            raise ConfigError(f"bad mount prefix {prefix!r}; expected /name")
        self._mounts.append((prefix, app))
        self._mounts.sort(key=lambda m: -len(m[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection."""
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        for prefix, app in self._mounts:
            if path == prefix or path.startswith(prefix + "/"):
                child = dict(scope)
                child["root_path"] = scope.get("root_path", "") + prefix
                await app(child, receive, send)
                return
        if path != RPC_PATH:
            await send_json(send, 404, {"error": f"no such path: {path}"})
        elif scope["method"] != "POST":
            await send_json(send, 405, {"error": "use POST"}, [(b"allow", b"POST")])
        else:
            await self._rpc(scope, receive, send)

    async def _rpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            allowed = await authorize(self.verify, scope)
        except AuthError as exc:
            await send_json(send, 401, error_response(None, AUTH_ERROR, str(exc)),
                            [(b"www-authenticate", b"Bearer")])
            return
        length = header(scope, b"content-length") or "0"
        too_large = length.isdigit() and int(length) > self.max_body
        body = None if too_large else await read_body(receive, self.max_body)
        if body is None:
            message = f"request body exceeds {self.max_body} bytes"
            await send_json(send, 413, error_response(None, INVALID_REQUEST, message))
            return
        answer = await self.dispatcher.handle(body, allowed)
        if answer is None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send_bytes(send, 200, answer, "application/json")
