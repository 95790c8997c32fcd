"""JSON-RPC against a real hypercorn server on loopback (port 0, in the test's nursery)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from sealagent.errors import AuthError, ConfigError, RPCTransportError
from sealagent.rpc.asgi import RPCApp
from sealagent.rpc.client import open_rpc_client
from sealagent.rpc.jsonrpc import Dispatcher, MethodRegistry
from sealagent.rpc.server import ServerHandle, start_server
from sealagent.web.auth import create_token, format_api_info, jwt_verifier, permissions_up_to

SECRET = b"s" * 32
ADMIN = create_token(SECRET, permissions_up_to("admin"))


def build_app(entered: trio.Event | None = None) -> RPCApp:
    registry = MethodRegistry()

    @registry.method("Sealing.Echo", perm="admin")
    async def echo(value: str) -> str:
        return value

    @registry.method("Sealing.Wait", perm="read")
    async def wait(seconds: float) -> str:
        if entered is not None:
            entered.set()
        await trio.sleep(seconds)
        return "done"

    return RPCApp(Dispatcher(registry), jwt_verifier(SECRET))


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[ServerHandle]:
    handle = await start_server(nursery, build_app(), "127.0.0.1:0")
    yield handle
    handle.stop()


def api_info(server: ServerHandle, token: str = ADMIN) -> str:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return format_api_info(token, host, int(port))


async def test_bound_url_and_call(server: ServerHandle) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert int(server.url.rsplit(":", 1)[1]) > 0
    async with open_rpc_client(api_info(server)) as client:
        assert await client.call("Sealing.Echo", ["hi"]) == "hi"


async def test_wrong_token_is_refused_with_a_clear_error(server: ServerHandle) -> None:
    forged = create_token(b"f" * 32, ["admin"])
    async with open_rpc_client(api_info(server, forged)) as client:
        with pytest.raises(AuthError, match="invalid token"):
            await client.call("Sealing.Echo", ["hi"])
    async with open_rpc_client(api_info(server, create_token(SECRET, ["read"]))) as client:
        with pytest.raises(AuthError, match=r"missing permission 'admin' for Sealing\.Echo"):
            await client.call("Sealing.Echo", ["hi"])
    async with httpx.AsyncClient() as http:
        response = await http.post(server.url + "/rpc/v0", json={})
    assert response.status_code == 401
    assert response.json() == {"jsonrpc": "2.0", "id": None,
                               "error": {"code": 1, "message": "missing bearer token"}}


async def test_malformed_json_and_batch(server: ServerHandle) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        malformed = await http.post("/rpc/v0", content=b'{"jsonrpc": "2.0", "method"')
        assert malformed.status_code == 200
        assert malformed.json()["error"]["code"] == -32700
        batch = await http.post("/rpc/v0", json=[
            {"jsonrpc": "2.0", "id": 1, "method": "Sealing.Echo", "params": ["a"]},
            {"jsonrpc": "2.0", "method": "Sealing.Echo", "params": ["notification"]},
            {"jsonrpc": "2.0", "id": 2, "method": "Sealing.Missing"},
            {"jsonrpc": "2.0", "id": 3, "method": "Sealing.Echo", "params": [3]},
        ])
    assert [(r["id"], r.get("result"), r.get("error", {}).get("code")) for r in batch.json()] == [
        (1, "a", None), (2, None, -32601), (3, None, -32602)]


async def test_stop_is_graceful(nursery: trio.Nursery) -> None:
    entered = trio.Event()
    server = await start_server(nursery, build_app(entered), graceful_timeout=5)
    results: list[str] = []

    async def slow_call() -> None:
        async with open_rpc_client(api_info(server)) as client:
            results.append(await client.call("Sealing.Wait", [0.3]))

    async with trio.open_nursery() as inner:
        inner.start_soon(slow_call)
        await entered.wait()
        server.stop()
    assert results == ["done"]
    async with open_rpc_client(api_info(server), timeout=2) as client:
        with pytest.raises(RPCTransportError, match="cannot reach manager"):
            await client.call("Sealing.Echo", ["late"])


async def test_unusable_addresses_are_config_errors(server: ServerHandle,
                                                    nursery: trio.Nursery) -> None:
    busy = server.url.removeprefix("http://")
    with pytest.raises(ConfigError, match=f"cannot listen on {busy}: Address already in use"):
        await start_server(nursery, build_app(), busy)
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        await start_server(nursery, build_app(), "localhost")
    with pytest.raises(ConfigError, match=r"cannot listen on 192\.0\.2\.1:0"):
        await start_server(nursery, build_app(), "192.0.2.1:0")
