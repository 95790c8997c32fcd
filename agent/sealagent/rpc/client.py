"""JSON-RPC client over ``httpx.AsyncClient`` (Trio through anyio).

Errors come back as the project's own exceptions:

* the peer cannot be reached, breaks the connection, answers garbage or does not answer
  within the call's timeout → :class:`~sealagent.errors.RPCTransportError`;
* HTTP 401 or error code 1 → :class:`~sealagent.errors.AuthError`;
* error code 2 → :class:`~sealagent.errors.SessionError`;
* any other error object → :class:`~sealagent.errors.RPCRemoteError` (code, message, data).

Every call has a deadline (a Trio cancel scope around the whole exchange), so a call never
hangs; long-polls pass a ``timeout`` longer than the wait they ask the server for.

The request body is sent from :class:`_RequestBody`, not from httpx's own body stream: that
one is an async generator, and a send cut off mid-body (a cancelled call, a peer that resets
the connection) leaves it suspended, which Trio reports as a ``ResourceWarning`` when it is
garbage collected (encode/httpx#3686).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
import trio

from sealagent.errors import AuthError, RPCError, RPCRemoteError, RPCTransportError, SessionError
from sealagent.rpc.asgi import RPC_PATH
from sealagent.rpc.jsonrpc import AUTH_ERROR, SESSION_ERROR
from sealagent.web.auth import APIInfo, parse_api_info
from sealagent.web.client import CONNECT_TIMEOUT, BearerClient

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds a call may take unless the caller says otherwise."""
"""Seconds to establish a connection."""

Params = Sequence[Any] | Mapping[str, Any] | None


class _RequestBody(httpx.AsyncByteStream):
    """A request body of known bytes whose iterator is a plain object (no async generator
    that an interrupted send could leave suspended)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._sent = True

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._sent = False
        return self

    async def __anext__(self) -> bytes:
        if self._sent:
            raise StopAsyncIteration
        self._sent = True
        return self._data


class RPCClient(BearerClient):
    """A JSON-RPC client for one server (``url`` is the base, ``/rpc/v0`` is appended)."""

    def __init__(self, url: str, token: str = "", *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = DEFAULT_TIMEOUT, peer: str = "manager") -> None:
        """``timeout`` bounds each call; ``peer`` names the server in errors."""
        super().__init__(token, transport=transport)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.peer = peer
        self._ids = itertools.count(1)

    async def call(self, method: str, params: Params = None, *,
                   timeout: float | None = None) -> Any:  # noqa: ASYNC109 (per-call deadline)
        """Call ``method`` with positional (sequence) or named (mapping) params."""
        limit = self.timeout if timeout is None else timeout
        request_id = next(self._ids)
        body = _encode({"jsonrpc": "2.0", "id": request_id, "method": method,
                        "params": _params(params)}, method)
        with trio.move_on_after(limit) as scope:
            response = await self._post(body, method)
        if scope.cancelled_caught:
            raise RPCTransportError(
                f"{self.peer} at {self.url} did not answer within {limit:g} s ({method})"
            )
        return self._result(response, request_id, method)

    async def _post(self, body: bytes, method: str) -> httpx.Response:
        request = self._http.build_request("POST", self.url + RPC_PATH, content=body,
                                           headers={"Content-Type": "application/json"})
        request.stream = _RequestBody(body)
        try:
            return await self._http.send(request)
        except httpx.TimeoutException:
            raise RPCTransportError(
                f"{self.peer} at {self.url} did not accept a connection within "
                f"{CONNECT_TIMEOUT:g} s ({method})"
            ) from None
        except httpx.HTTPError as exc:
            raise RPCTransportError(
                f"cannot reach {self.peer} at {self.url} ({method}): {exc or type(exc).__name__}"
            ) from None

    def _result(self, response: httpx.Response, request_id: int, method: str) -> Any:
        try:
            answer = json.loads(response.content)
        except ValueError:
            answer = None
        if response.status_code == 401:
            raise AuthError(_error_message(answer) or f"{self.peer} refused the token")
        if response.status_code != 200 or not isinstance(answer, dict):
            raise RPCTransportError(
                f"{self.peer} at {self.url} answered HTTP {response.status_code} to {method}: "
                f"{response.text[:200]!r}"
            )
        if answer.get("id") != request_id:
            raise RPCTransportError(f"{self.peer} answered {method} with the wrong id")
        if "error" in answer:
            raise _remote_error(answer["error"], method)
        if "result" not in answer:
            raise RPCTransportError(f"{self.peer} answered {method} without a result")
        return answer["result"]


def _params(params: Params) -> list[Any] | dict[str, Any]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return dict(params)
    if isinstance(params, str | bytes):
        raise RPCError("params must be a sequence or a mapping, not a string")
    return list(params)


def _encode(request: dict[str, Any], method: str) -> bytes:
    try:
        return json.dumps(request, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise RPCError(f"params of {method} cannot be sent as JSON: {exc}") from None


def _error_message(answer: Any) -> str | None:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        message = answer["error"].get("message")
        return str(message) if message is not None else None
    return None


def _remote_error(error: Any, method: str) -> Exception:
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return RPCTransportError(f"malformed error object in the answer to {method}: {error!r}")
    code, message = error["code"], str(error.get("message", ""))
    if code == AUTH_ERROR:
        return AuthError(message)
    if code == SESSION_ERROR:
        return SessionError(message)
    return RPCRemoteError(code, message, error.get("data"))


@asynccontextmanager
async def open_rpc_client(api_info: APIInfo | str, *,
                          transport: httpx.AsyncBaseTransport | None = None,
                          timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (default per call)
                          peer: str = "manager") -> AsyncIterator[RPCClient]:
    """An :class:`RPCClient` for an API-info string (or parsed :class:`APIInfo`)."""
    info = parse_api_info(api_info) if isinstance(api_info, str) else api_info
    client = RPCClient(info.url, info.token, transport=transport, timeout=timeout, peer=peer)
    async with client:
        yield client


def call_sync(api_info: APIInfo | str, method: str, params: Params = None, *,
              timeout: float = 10.0, peer: str = "manager") -> Any:
    """Make one call from synchronous code (the CLI); never waits longer than ``timeout``."""
    info = parse_api_info(api_info) if isinstance(api_info, str) else api_info

    async def run() -> Any:
        result = None
        with trio.move_on_after(timeout) as scope:
            async with open_rpc_client(info, timeout=timeout, peer=peer) as client:
                result = await client.call(method, params, timeout=timeout)
        if scope.cancelled_caught:
            raise RPCTransportError(f"{peer} at {info.url} did not answer within {timeout:g} s")
        return result

    return trio.run(run)
