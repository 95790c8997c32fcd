"""The HTTP client under the manager's and the agents' clients: a bearer token, timeouts.

:class:`BearerClient` is an ``httpx.AsyncClient`` that sends ``Authorization: Bearer
<token>``, gives up connecting after :data:`CONNECT_TIMEOUT`, and closes its connections
even while its caller is being cancelled (a cut-off close would leave httpx's async
generators unfinished).  :class:`~sealagent.rpc.client.RPCClient` and
:class:`~sealagent.storage.fetch.RemoteClient` build on it.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Final, Self

import httpx
import trio

CONNECT_TIMEOUT: Final = 10.0
"""Seconds to open a connection (and to close the client's connections)."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificate checks on), built once per process: loading
    the CA bundle takes tens of milliseconds, and clients are made per call."""
    return httpx.create_ssl_context()


class BearerClient:
    """An HTTP client that presents a bearer token; use it as an async context manager."""

    def __init__(self, token: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 read_timeout: float | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        """
        :param token: sent as ``Authorization: Bearer <token>`` (nothing when empty).
        :param read_timeout: seconds without data before a request fails (None: no limit).
        :param headers: more headers for every request.
        """
        sent = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            transport=transport, headers={**sent, **(headers or {})}, verify=tls_context(),
            timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (shielded, so that it also completes after a timeout)."""
        with trio.CancelScope(shield=True), trio.move_on_after(CONNECT_TIMEOUT):
            await self._http.aclose()
