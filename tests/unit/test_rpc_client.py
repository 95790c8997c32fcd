"""The RPC client and the HTTP app, in process (httpx.ASGITransport) or on a dead socket."""

from __future__ import annotations

import gc
import socket
import ssl
import struct
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
import trio

from sealagent.errors import (
    AuthError,
    ConfigError,
    RPCError,
    RPCRemoteError,
    RPCTransportError,
    SchedulerError,
    SessionError,
)
from sealagent.rpc.asgi import RPCApp
from sealagent.rpc.client import RPCClient, call_sync, open_rpc_client
from sealagent.rpc.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, Dispatcher, MethodRegistry
from sealagent.web.asgi import Receive, Scope, Send
from sealagent.web.auth import create_token, format_api_info, jwt_verifier
from sealagent.web.client import tls_context

SECRET = b"k" * 32
ADMIN = create_token(SECRET, ["read", "write", "sign", "admin"])
READ = create_token(SECRET, ["read"])


def build_app(max_body: int = 1024) -> RPCApp:
    registry = MethodRegistry()

    @registry.method("Test.Add", perm="read")
    async def add(a: int, b: int) -> int:
        return a + b

    @registry.method("Test.Admin", perm="admin")
    async def admin_only() -> str:
        return "yes"

    @registry.method("Test.Session", perm="read")
    async def session() -> None:
        raise SessionError("unknown session")

    @registry.method("Test.App", perm="read")
    async def app_error() -> None:
        raise SchedulerError("queue closed")

    @registry.method("Test.Sleep", perm="read")
    async def sleep(seconds: float) -> None:
        await trio.sleep(seconds)

    return RPCApp(Dispatcher(registry), jwt_verifier(SECRET), max_body=max_body)


@pytest.fixture
async def client() -> AsyncIterator[RPCClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with RPCClient("http://manager", ADMIN, transport=transport) as rpc:
        yield rpc


async def test_call_and_error_mapping(client: RPCClient) -> None:
    assert await client.call("Test.Add", [2, 3]) == 5
    assert await client.call("Test.Add", {"a": 1, "b": 1}) == 2
    with pytest.raises(SessionError, match="unknown session"):
        await client.call("Test.Session")
    with pytest.raises(RPCRemoteError) as remote:
        await client.call("Test.App")
    assert (remote.value.code, remote.value.message, remote.value.data) == (
        3, "queue closed", "SchedulerError")
    with pytest.raises(RPCRemoteError) as missing:
        await client.call("Test.Missing")
    assert missing.value.code == METHOD_NOT_FOUND
    with pytest.raises(RPCRemoteError) as bad:
        await client.call("Test.Add", [1])
    assert bad.value.code == INVALID_PARAMS
    with pytest.raises(RPCError, match="not a string"):
        await client.call("Test.Add", "12")


async def test_per_call_timeout(client: RPCClient, autojump_clock: trio.abc.Clock) -> None:
    with pytest.raises(RPCTransportError, match=r"did not answer within 2 s \(Test.Sleep\)"):
        await client.call("Test.Sleep", [60], timeout=2)
    assert await client.call("Test.Sleep", [1], timeout=2) is None


async def test_tokens_are_checked() -> None:
    transport = httpx.ASGITransport(app=build_app())
    async with RPCClient("http://m", READ, transport=transport) as reader:
        assert await reader.call("Test.Add", [1, 1]) == 2
        with pytest.raises(AuthError, match=r"missing permission .admin. for Test\.Admin"):
            await reader.call("Test.Admin")
    for token in ("", "garbage", create_token(b"x" * 32, ["admin"])):
        async with RPCClient("http://m", token, transport=transport) as stranger:
            with pytest.raises(AuthError):
                await stranger.call("Test.Add", [1, 1])


async def test_http_layer_statuses() -> None:
    transport = httpx.ASGITransport(app=build_app(max_body=200))
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as http:
        unauthorized = await http.post("/rpc/v0", content=b"{}")
        assert unauthorized.status_code == 401
        assert unauthorized.json()["error"]["code"] == 1
        assert unauthorized.headers["www-authenticate"] == "Bearer"
        too_big = await http.post("/rpc/v0", content=b"[" + b"1," * 200 + b"1]", headers=headers)
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == -32600
        assert (await http.get("/rpc/v0", headers=headers)).status_code == 405
        assert (await http.get("/elsewhere", headers=headers)).status_code == 404
        note = await http.post("/rpc/v0", headers=headers,
                               json={"jsonrpc": "2.0", "method": "Test.Add", "params": [1, 2]})
        assert note.status_code == 204
        assert note.content == b""


async def test_mounted_apps_see_their_prefix() -> None:
    app = build_app()
    seen: list[tuple[str, str]] = []

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["root_path"], scope["path"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"metrics"})

    app.mount("/debug/metrics", mounted)
    with pytest.raises(ConfigError):
        app.mount("relative", mounted)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://m") as http:
        assert (await http.get("/debug/metrics")).text == "metrics"
        assert (await http.get("/debug/metrics/x")).text == "metrics"
        assert (await http.get("/debug/metricsfoo")).status_code == 404
    assert seen == [("/debug/metrics", "/debug/metrics"), ("/debug/metrics", "/debug/metrics/x")]


async def test_transport_failures_are_transport_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with RPCClient("http://10.9.9.9:1", ADMIN,
                         transport=httpx.MockTransport(refuse)) as rpc:
        with pytest.raises(RPCTransportError, match="cannot reach manager at"):
            await rpc.call("Test.Add", [1, 2])

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>")

    async with RPCClient("http://x", ADMIN, transport=httpx.MockTransport(garbage)) as rpc:
        with pytest.raises(RPCTransportError, match="answered HTTP 200"):
            await rpc.call("Test.Add", [1, 2])

    def wrong_id(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": 999, "result": 1})

    async with RPCClient("http://x", ADMIN, transport=httpx.MockTransport(wrong_id)) as rpc:
        with pytest.raises(RPCTransportError, match="wrong id"):
            await rpc.call("Test.Add", [1, 2])


async def test_open_rpc_client_from_api_info() -> None:
    transport = httpx.ASGITransport(app=build_app())
    info = format_api_info(ADMIN, "127.0.0.1", 2345)
    async with open_rpc_client(info, transport=transport) as rpc:
        assert rpc.url == "http://127.0.0.1:2345"
        assert await rpc.call("Test.Admin") == "yes"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listening socket that accepts connections but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_call_sync_never_hangs(silent_port: int) -> None:
    info = format_api_info(ADMIN, "127.0.0.1", silent_port)
    with pytest.raises(RPCTransportError,
                       match=rf"manager at http://127.0.0.1:{silent_port} did not answer "
                             r"within 0.3 s"):
        call_sync(info, "Test.Add", [1, 2], timeout=0.3)


@contextmanager
def no_leaked_async_generators() -> Iterator[None]:
    """Fail if an async generator is garbage collected unfinished inside the block.

    Trio reports such a generator with a ResourceWarning from its finalizer, so the block
    ends with a collection to catch one that is held by a reference cycle.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


SOCKET_BUFFER = 64 * 1024
STALLED_BODY = 4 * 1024 * 1024
"""A request body far larger than what two sockets with SOCKET_BUFFER buffers take in."""


class StallingPeer:
    """A loopback HTTP peer that reads a request's head and then stops reading: it stalls
    until released, or resets the connection."""

    def __init__(self, reset: bool) -> None:
        self.reset = reset
        self.release = trio.Event()
        self.body_received = -1
        self.drained = trio.Event()
        self.url = ""

    async def start(self, nursery: trio.Nursery) -> None:
        """Listen on a loopback port (with a small receive buffer, so that a large body
        cannot all be taken in) and serve from ``nursery``."""
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        await sock.bind(("127.0.0.1", 0))
        sock.listen()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        nursery.start_soon(trio.serve_listeners, self._serve, [trio.SocketListener(sock)])

    async def _serve(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some()
        if self.reset:
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await stream.aclose()
            return
        await self.release.wait()
        received = len(data) - data.index(b"\r\n\r\n") - 4
        while chunk := await stream.receive_some():
            received += len(chunk)
        self.body_received = received
        self.drained.set()


@pytest.mark.parametrize("cut", ["cancelled", "deadline", "reset"])
async def test_a_call_cut_off_mid_request_leaves_no_generator(cut: str,
                                                              nursery: trio.Nursery) -> None:
    peer = StallingPeer(reset=cut == "reset")
    await peer.start(nursery)
    params = ["x" * STALLED_BODY]
    small_sends = httpx.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)])
    async with RPCClient(peer.url, ADMIN, transport=small_sends) as rpc:
        with no_leaked_async_generators():
            if cut == "cancelled":
                with trio.move_on_after(0.3) as scope:
                    await rpc.call("Test.Echo", params)
                assert scope.cancelled_caught
            else:
                with pytest.raises(RPCTransportError,
                                   match="did not answer within" if cut == "deadline"
                                   else "cannot reach manager"):
                    await rpc.call("Test.Echo", params, timeout=0.3 if cut == "deadline" else 10)
    if not peer.reset:
        peer.release.set()
        with trio.fail_after(10):
            await peer.drained.wait()
        assert 0 <= peer.body_received < STALLED_BODY  # the call stopped mid-body


async def test_unserialisable_params_are_rpc_errors(client: RPCClient) -> None:
    with pytest.raises(RPCError, match=r"params of Test\.Add cannot be sent as JSON"):
        await client.call("Test.Add", [float("nan"), 1])
    with pytest.raises(RPCError, match="cannot be sent as JSON"):
        await client.call("Test.Add", [object(), 1])


def test_clients_share_one_tls_context_that_checks_certificates() -> None:
    context = tls_context()
    assert context is tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
