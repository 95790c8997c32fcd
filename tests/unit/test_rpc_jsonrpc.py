"""The JSON-RPC registry and dispatcher, without HTTP."""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict

import pytest
import structlog
import trio

from sealagent.errors import AuthError, ConfigError, SchedulerError, SessionError
from sealagent.rpc.jsonrpc import (
    APPLICATION_ERROR,
    AUTH_ERROR,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SESSION_ERROR,
    Dispatcher,
    MethodRegistry,
    exported,
)

ALL = frozenset({"read", "write", "sign", "admin"})


class Window(TypedDict):
    """A typed object parameter."""

    tasks: list[str]


class Service:
    """A service object exposing methods through ``exported``."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @exported("admin")
    async def request_window(self, session: str, timeout_s: float) -> dict[str, Any]:
        """Long-poll stand-in."""
        return {"session": session, "timeout": timeout_s}

    @exported("write", name="Note")
    async def note(self, text: str) -> None:
        """Record ``text``."""
        self.seen.append(text)

    @exported("read")
    async def fail(self, kind: Literal["auth", "session", "app", "bug"]) -> None:
        """Raise the error ``kind`` names."""
        errors: dict[str, Exception] = {
            "auth": AuthError("token revoked"), "session": SessionError("unknown session s1"),
            "app": SchedulerError("no such task t-9"), "bug": KeyError("secret detail"),
        }
        raise errors[kind]

    @exported("read")
    async def typed(self, n: int, ratio: float, flag: bool, names: list[str],
                    table: dict[str, int], pair: tuple[int, str], window: Window,
                    maybe: int | None = None) -> str:
        """Many parameter types."""
        return "ok"

    @exported("read")
    async def unserializable(self) -> object:
        """Return something JSON cannot encode."""
        return object()

    @exported("read")
    async def not_a_number(self) -> float:
        """Return NaN, which JSON cannot carry."""
        return float("nan")

    @exported("read")
    async def slow(self, delay: float) -> float:
        """Sleep, to check that batches run concurrently."""
        await trio.sleep(delay)
        return delay


@pytest.fixture
def service() -> Service:
    return Service()


@pytest.fixture
def dispatcher(service: Service) -> Dispatcher:
    registry = MethodRegistry()
    registry.add_object("Sealing", service)

    @registry.method("Test.Echo", perm="read")
    async def echo(*args: Any) -> list[Any]:
        return list(args)

    return Dispatcher(registry)


async def answer(dispatcher: Dispatcher, request: Any, allowed: frozenset[str] = ALL) -> Any:
    body = json.dumps(request).encode() if not isinstance(request, bytes) else request
    raw = await dispatcher.handle(body, allowed)
    return None if raw is None else json.loads(raw)


def call(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        request["params"] = params
    return request


async def test_positional_and_named_params(dispatcher: Dispatcher) -> None:
    assert await answer(dispatcher, call("Sealing.RequestWindow", ["s", 5])) == {
        "jsonrpc": "2.0", "id": 1, "result": {"session": "s", "timeout": 5},
    }
    named = await answer(dispatcher, call("Sealing.RequestWindow",
                                          {"session": "s", "timeout_s": 1.5}, "abc"))
    assert named["id"] == "abc"
    assert named["result"] == {"session": "s", "timeout": 1.5}


async def test_registry_names(dispatcher: Dispatcher) -> None:
    assert dispatcher.registry.names() == [
        "Sealing.Fail", "Sealing.NotANumber", "Sealing.Note", "Sealing.RequestWindow",
        "Sealing.Slow",
        "Sealing.Typed", "Sealing.Unserializable", "Test.Echo",
    ]


async def test_parse_error(dispatcher: Dispatcher) -> None:
    response = await answer(dispatcher, b'{"jsonrpc": "2.0", "method": ')
    assert response["error"]["code"] == PARSE_ERROR
    assert response["id"] is None
    assert (await answer(dispatcher, b"\xff\xfe"))["error"]["code"] == PARSE_ERROR


@pytest.mark.parametrize("request_obj", [
    42,
    {"method": "Test.Echo", "id": 1},
    {"jsonrpc": "1.0", "method": "Test.Echo", "id": 1},
    {"jsonrpc": "2.0", "method": 7, "id": 1},
    {"jsonrpc": "2.0", "method": "Test.Echo", "params": "x", "id": 1},
    {"jsonrpc": "2.0", "method": "Test.Echo", "id": [1]},
    {"jsonrpc": "2.0", "method": "Test.Echo", "id": True},
    {"jsonrpc": "2.0", "method": "Test.Echo", "id": 1, "extra": 1},
])
async def test_invalid_requests(dispatcher: Dispatcher, request_obj: Any) -> None:
    response = await answer(dispatcher, request_obj)
    assert response["error"]["code"] == INVALID_REQUEST
    assert response["id"] in (None, 1)


async def test_empty_and_oversized_batches(dispatcher: Dispatcher) -> None:
    assert (await answer(dispatcher, []))["error"]["code"] == INVALID_REQUEST
    small = Dispatcher(dispatcher.registry, max_batch=2)
    response = await answer(small, [call("Test.Echo", [i], i) for i in range(3)])
    assert response["error"]["code"] == INVALID_REQUEST
    assert "exceeds 2" in response["error"]["message"]


async def test_method_not_found(dispatcher: Dispatcher) -> None:
    response = await answer(dispatcher, call("Sealing.Nope"))
    assert response["error"] == {"code": METHOD_NOT_FOUND,
                                 "message": "method not found: Sealing.Nope"}


@pytest.mark.parametrize(("params", "fragment"), [
    (["s"], "missing a required argument"),
    (["s", 1, 2], "too many positional arguments"),
    ({"session": "s", "timeout_s": 1, "other": 2}, "unexpected keyword argument"),
    ([1, 1], "'session' must be str, got int"),
    (["s", "soon"], "'timeout_s' must be float, got str"),
    (["s", True], "'timeout_s' must be float, got bool"),
])
async def test_invalid_params(dispatcher: Dispatcher, params: Any, fragment: str) -> None:
    response = await answer(dispatcher, call("Sealing.RequestWindow", params))
    assert response["error"]["code"] == INVALID_PARAMS
    assert fragment in response["error"]["message"]


GOOD_TYPED = {"n": 1, "ratio": 2, "flag": False, "names": ["a"], "table": {"a": 1},
              "pair": [1, "x"], "window": {"tasks": []}, "maybe": None}


@pytest.mark.parametrize(("name", "value"), [
    ("n", 1.5), ("n", True), ("flag", 0), ("names", ["a", 2]), ("names", "ab"),
    ("table", {"a": "1"}), ("table", [1]), ("pair", [1, 2]), ("pair", [1, "x", 3]),
    ("window", []), ("maybe", "x"),
])
async def test_type_checks(dispatcher: Dispatcher, name: str, value: Any) -> None:
    assert (await answer(dispatcher, call("Sealing.Typed", GOOD_TYPED)))["result"] == "ok"
    response = await answer(dispatcher, call("Sealing.Typed", {**GOOD_TYPED, name: value}))
    assert response["error"]["code"] == INVALID_PARAMS, (name, value)
    assert repr(name) in response["error"]["message"]


async def test_literal_params_are_checked(dispatcher: Dispatcher) -> None:
    response = await answer(dispatcher, call("Sealing.Fail", ["everything"]))
    assert response["error"]["code"] == INVALID_PARAMS


async def test_permissions(dispatcher: Dispatcher) -> None:
    response = await answer(dispatcher, call("Sealing.RequestWindow", ["s", 1]),
                            frozenset({"read", "write"}))
    assert response["error"]["code"] == AUTH_ERROR
    assert "'admin'" in response["error"]["message"]
    assert "Sealing.RequestWindow" in response["error"]["message"]
    ok = await answer(dispatcher, call("Sealing.Note", ["x"]), frozenset({"write"}))
    assert ok["result"] is None


@pytest.mark.parametrize(("kind", "code", "message", "data"), [
    ("auth", AUTH_ERROR, "token revoked", None),
    ("session", SESSION_ERROR, "unknown session s1", None),
    ("app", APPLICATION_ERROR, "no such task t-9", "SchedulerError"),
])
async def test_application_errors(dispatcher: Dispatcher, kind: str, code: int, message: str,
                                  data: str | None) -> None:
    response = await answer(dispatcher, call("Sealing.Fail", [kind]))
    expected: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        expected["data"] = data
    assert response["error"] == expected


async def test_internal_errors_are_logged_not_leaked(dispatcher: Dispatcher) -> None:
    with structlog.testing.capture_logs() as logs:
        response = await answer(dispatcher, call("Sealing.Fail", ["bug"]))
        unserializable = await answer(dispatcher, call("Sealing.Unserializable"))
        nan = await answer(dispatcher, call("Sealing.NotANumber"))
    assert response["error"] == {"code": INTERNAL_ERROR, "message": "internal error"}
    assert "secret detail" not in json.dumps(response)
    assert unserializable["error"]["code"] == INTERNAL_ERROR
    assert nan["error"]["code"] == INTERNAL_ERROR
    assert [entry["method"] for entry in logs] == [
        "Sealing.Fail", "Sealing.Unserializable", "Sealing.NotANumber"]
    assert all(entry["log_level"] == "error" and entry["exc_info"] for entry in logs)


async def test_notifications_get_no_answer(dispatcher: Dispatcher, service: Service) -> None:
    note = {"jsonrpc": "2.0", "method": "Sealing.Note", "params": ["hello"]}
    assert await answer(dispatcher, note) is None
    assert service.seen == ["hello"]
    failing = {"jsonrpc": "2.0", "method": "Sealing.Nope"}
    assert await answer(dispatcher, failing) is None
    assert await answer(dispatcher, [note, failing]) is None


async def test_batch_keeps_order_skips_notifications_and_runs_concurrently(
        dispatcher: Dispatcher, autojump_clock: trio.abc.Clock) -> None:
    batch = [
        call("Sealing.Slow", [3], "a"),
        {"jsonrpc": "2.0", "method": "Sealing.Note", "params": ["n"]},
        call("Sealing.Slow", [1], "b"),
        call("Sealing.Nope", [], "c"),
        17,
    ]
    start = trio.current_time()
    response = await answer(dispatcher, batch)
    assert trio.current_time() - start == pytest.approx(3)
    assert [r["id"] for r in response] == ["a", "b", "c", None]
    assert response[0]["result"] == 3
    assert response[1]["result"] == 1
    assert response[2]["error"]["code"] == METHOD_NOT_FOUND
    assert response[3]["error"]["code"] == INVALID_REQUEST


def test_registration_is_validated() -> None:
    registry = MethodRegistry()

    async def handler() -> None:
        return None

    def sync_handler() -> None:
        return None

    registry.add("A.B", handler, perm="read")
    with pytest.raises(ConfigError, match="already registered"):
        registry.add("A.B", handler, perm="read")
    with pytest.raises(ConfigError, match=r"Namespace\.Method"):
        registry.add("NoDot", handler, perm="read")
    with pytest.raises(ConfigError, match="async"):
        registry.add("A.C", sync_handler, perm="read")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown permission"):
        registry.add("A.D", handler, perm="root")
    with pytest.raises(ConfigError, match="no exported"):
        registry.add_object("X", object())


@pytest.mark.parametrize("body", [
    b'{"jsonrpc": "2.0", "method": "Test.Echo", "id": 1, "params": [' + b"[" * 100_000
    + b"]" * 100_000 + b"]}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"jsonrpc": "2.0", "method": "Test.Echo", "id": 1, "params": [' + b"[" * 500
    + b"]" * 500 + b"]}",
    b'{"jsonrpc": "2.0", "method": "Test.Echo", "id": 1e400}',
    b'{"jsonrpc": "2.0", "method": "Test.Echo", "id": 1, "params": [NaN]}',
    b'{"jsonrpc": "2.0", "method": "Test.Echo", "id": 1, "params": [-1e999]}',
])
async def test_deep_or_non_finite_input_is_a_parse_error(dispatcher: Dispatcher,
                                                        body: bytes) -> None:
    response = await answer(dispatcher, body)
    assert response["error"]["code"] == PARSE_ERROR
    assert response["id"] is None


async def test_moderate_nesting_is_accepted(dispatcher: Dispatcher) -> None:
    nested: Any = 1
    for _ in range(30):
        nested = [nested]
    assert (await answer(dispatcher, call("Test.Echo", [nested])))["result"] == [nested]


@pytest.mark.parametrize("request_obj", [
    call("Sealing." + "N" * 1_000_000),
    call("Sealing.RequestWindow", {"session": "s", "timeout_s": 1, "x" * 1_000_000: 2}),
    call("Sealing.Fail", ["x" * 1_000_000]),
])
async def test_error_messages_do_not_echo_whole_arguments(dispatcher: Dispatcher,
                                                         request_obj: Any) -> None:
    response = await answer(dispatcher, request_obj)
    assert len(json.dumps(response)) < 2000
    assert response["error"]["code"] in (METHOD_NOT_FOUND, INVALID_PARAMS)
