"""JSON-RPC 2.0: a registry of async methods and a dispatcher, independent of HTTP.

Methods are named ``Namespace.Method`` (Lotus style, e.g. ``Sealing.RequestWindow``), are
``async`` functions, and each declares the permission a caller's token must grant.  The
dispatcher takes a request body (bytes) and the caller's permissions and returns the
response body, or ``None`` when there is nothing to answer (only notifications).

Bodies nested deeper than :data:`MAX_NESTING` or holding non-finite numbers are parse
errors; messages are cut to :data:`MAX_MESSAGE` characters.  Errors are answered with the
standard codes (:data:`PARSE_ERROR` … :data:`INTERNAL_ERROR`)
and three application codes: :data:`AUTH_ERROR` (1) for
:class:`~sealagent.errors.AuthError`, :data:`SESSION_ERROR` (2) for
:class:`~sealagent.errors.SessionError`, :data:`APPLICATION_ERROR` (3) for any other
:class:`~sealagent.errors.SealAgentError` (its message, and its class name as ``data``).
Anything else a method raises is logged with its traceback and answered as a bare
"internal error".

Parameters are checked against the method's signature (arity, names) and its type
annotations before the call: ``bool``, ``int``, ``float``, ``str``, ``None``, ``Any``,
unions, ``Literal``, ``list``/``Sequence``, ``tuple``, ``dict``/``Mapping`` (with string
keys) and TypedDicts (as objects) are checked; other annotations are not.
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import structlog
import trio

from sealagent.errors import AuthError, ConfigError, SealAgentError, SessionError
from sealagent.web.auth import check_permission

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
AUTH_ERROR: Final = 1
SESSION_ERROR: Final = 2
APPLICATION_ERROR: Final = 3

DEFAULT_MAX_BATCH: Final = 100
"""Requests accepted in one batch."""

MAX_NESTING: Final = 64
"""Deepest nesting of arrays and objects accepted in a request body."""

MAX_MESSAGE: Final = 300
"""Characters of an error message answered; longer ones (echoing arguments) are cut."""

Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_EXPORT_ATTR: Final = "__sealagent_rpc__"
_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RPCMethod:
    """A registered method: its handler, the permission it needs and its signature."""

    name: str
    handler: Handler
    permission: str
    signature: inspect.Signature
    hints: Mapping[str, Any]


def exported(perm: str, name: str | None = None) -> Callable[[H], H]:
    """Mark an async method of a service object for :meth:`MethodRegistry.add_object`.

    ``name`` defaults to the method name in CamelCase (``request_window`` →
    ``RequestWindow``).
    """
    check_permission(perm)

    def mark(func: H) -> H:
        method = name or "".join(part.capitalize() for part in func.__name__.split("_"))
        setattr(func, _EXPORT_ATTR, (method, perm))
        return func

    return mark


class MethodRegistry:
    """The methods a server exposes, keyed ``Namespace.Method``."""

    def __init__(self) -> None:
        self._methods: dict[str, RPCMethod] = {}

    def add(self, name: str, handler: Handler, *, perm: str) -> None:
        """Register ``handler`` (an async function) as ``name``, callable with ``perm``."""
        if not _NAME.match(name):
            raise ConfigError(f"RPC method name {name!r} is not of the form Namespace.Method")
        if name in self._methods:
            raise ConfigError(f"RPC method {name} is already registered")
        if not inspect.iscoroutinefunction(handler):
            raise ConfigError(f"RPC method {name} must be an async function")
        try:
            hints = typing.get_type_hints(handler)
        except Exception as exc:  # any unresolvable annotation
            raise ConfigError(f"cannot resolve the annotations of {name}: {exc}") from None
        hints.pop("return", None)
        self._methods[name] = RPCMethod(
            name, handler, check_permission(perm), inspect.signature(handler), hints
        )

    def method(self, name: str, *, perm: str) -> Callable[[H], H]:
        """Decorator form of :meth:`add`."""

        def register(handler: H) -> H:
            self.add(name, handler, perm=perm)
            return handler

        return register

    def add_object(self, namespace: str, obj: object) -> list[str]:
        """Register every method of ``obj`` marked with :func:`exported` under ``namespace``."""
        added = []
        for attr in dir(type(obj)):
            mark = getattr(getattr(type(obj), attr), _EXPORT_ATTR, None)
            if mark is not None:
                method, perm = mark
                self.add(f"{namespace}.{method}", getattr(obj, attr), perm=perm)
                added.append(f"{namespace}.{method}")
        if not added:
            raise ConfigError(f"{type(obj).__name__} has no exported RPC methods")
        return added

    def get(self, name: str) -> RPCMethod | None:
        """The method registered as ``name``, if any."""
        return self._methods.get(name)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._methods)


class _CallError(Exception):
    """An error answered to one call (never leaves this module)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def error_response(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A complete JSON-RPC error response (``data`` only when given)."""
    error: dict[str, Any] = {"code": code, "message": clip(message)}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class Dispatcher:
    """Answers JSON-RPC request bodies by calling the methods of a registry."""

    def __init__(self, registry: MethodRegistry, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.registry = registry
        self.max_batch = max_batch

    async def handle(self, body: bytes, allowed: frozenset[str]) -> bytes | None:
        """Answer one HTTP body (a request or a batch) for a caller granted ``allowed``."""
        try:
            message = decode_body(body)
        except ValueError as exc:
            return _encode(error_response(None, PARSE_ERROR, f"parse error: {exc}"))
        if not isinstance(message, list):
            return await self.answer(message, allowed)
        if not message:
            return _encode(error_response(None, INVALID_REQUEST, "empty batch"))
        if len(message) > self.max_batch:
            return _encode(error_response(
                None, INVALID_REQUEST, f"batch of {len(message)} exceeds {self.max_batch} calls"
            ))
        results: list[bytes | None] = [None] * len(message)

        async def run(index: int, request: Any) -> None:
            results[index] = await self.answer(request, allowed)

        async with trio.open_nursery() as nursery:
            for index, request in enumerate(message):
                nursery.start_soon(run, index, request)
        answered = [r for r in results if r is not None]
        return b"[" + b",".join(answered) + b"]" if answered else None

    async def answer(self, request: Any, allowed: frozenset[str]) -> bytes | None:
        """The encoded response to one decoded request; ``None`` for a notification."""
        try:
            name, params = _validate(request)
        except _CallError as exc:
            request_id = request.get("id") if isinstance(request, dict) else None
            return _encode(error_response(request_id if _valid_id(request_id) else None,
                                          exc.code, exc.message))
        notification = "id" not in request
        try:
            result = await self._invoke(name, params, allowed)
        except _CallError as exc:
            return None if notification else _encode(
                error_response(request["id"], exc.code, exc.message, exc.data))
        if notification:
            return None
        try:
            return _encode({"jsonrpc": "2.0", "id": request["id"], "result": result})
        except (TypeError, ValueError):
            _log.exception("rpc result is not JSON", method=name)
            return _encode(error_response(request["id"], INTERNAL_ERROR, "internal error"))

    async def _invoke(self, name: str, params: Any, allowed: frozenset[str]) -> Any:
        method = self.registry.get(name)
        if method is None:
            raise _CallError(METHOD_NOT_FOUND, f"method not found: {name}")
        if method.permission not in allowed:
            raise _CallError(AUTH_ERROR, f"missing permission {method.permission!r} for {name}")
        bound = _bind(method, params)
        try:
            return await method.handler(*bound.args, **bound.kwargs)
        except AuthError as exc:
            raise _CallError(AUTH_ERROR, str(exc)) from None
        except SessionError as exc:
            raise _CallError(SESSION_ERROR, str(exc)) from None
        except SealAgentError as exc:
            raise _CallError(APPLICATION_ERROR, str(exc), type(exc).__name__) from None
        except Exception:
            _log.exception("rpc method failed", method=name)
            raise _CallError(INTERNAL_ERROR, "internal error") from None


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text``, cut to ``limit`` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {clip(text, 40)}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_body(body: bytes) -> Any:
    """Decode a request body: JSON, finite numbers only, nested at most MAX_NESTING deep.

    Raises ValueError (with a short reason) for anything else.
    """
    try:
        decoded = json.loads(body, parse_float=_finite_float, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"nesting deeper than {MAX_NESTING} levels") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:
        raise ValueError(clip(str(exc))) from None
    level: list[Any] = [decoded]
    for _ in range(MAX_NESTING + 1):
        level = [child for item in level if isinstance(item, list | dict)
                 for child in (item.values() if isinstance(item, dict) else item)]
        if not level:
            return decoded
    raise ValueError(f"nesting deeper than {MAX_NESTING} levels")


def _encode(response: dict[str, Any]) -> bytes:
    return json.dumps(response, separators=(",", ":"), allow_nan=False).encode()


def _valid_id(request_id: Any) -> bool:
    return request_id is None or (
        isinstance(request_id, str | int | float) and not isinstance(request_id, bool)
    )


def _validate(request: Any) -> tuple[str, Any]:
    if not isinstance(request, dict):
        raise _CallError(INVALID_REQUEST, "request must be a JSON object")
    if request.get("jsonrpc") != "2.0":
        raise _CallError(INVALID_REQUEST, 'request must have "jsonrpc": "2.0"')
    method = request.get("method")
    if not isinstance(method, str) or not method:
        raise _CallError(INVALID_REQUEST, '"method" must be a non-empty string')
    if not _valid_id(request.get("id")):
        raise _CallError(INVALID_REQUEST, '"id" must be a string, a number or null')
    params = request.get("params", [])
    if not isinstance(params, list | dict):
        raise _CallError(INVALID_REQUEST, '"params" must be an array or an object')
    extra = sorted(set(request) - {"jsonrpc", "method", "params", "id"})
    if extra:
        raise _CallError(INVALID_REQUEST, f"unexpected request members: {', '.join(extra)}")
    return method, params


def _bind(method: RPCMethod, params: list[Any] | dict[str, Any]) -> inspect.BoundArguments:
    try:
        if isinstance(params, list):
            bound = method.signature.bind(*params)
        else:
            bound = method.signature.bind(**params)
    except TypeError as exc:
        raise _CallError(INVALID_PARAMS, f"invalid params for {method.name}: {exc}") from None
    for pname, value in bound.arguments.items():
        hint = method.hints.get(pname)
        kind = method.signature.parameters[pname].kind
        if hint is None or kind in (inspect.Parameter.VAR_POSITIONAL,
                                    inspect.Parameter.VAR_KEYWORD):
            continue
        if not _conforms(value, hint):
            raise _CallError(
                INVALID_PARAMS,
                f"invalid params for {method.name}: {pname!r} must be {_describe(hint)}, "
                f"got {type(value).__name__}",
            )
    return bound


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a decoded JSON ``value`` fits the annotation ``hint``."""
    if hint is Any or hint is object:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return any(type(value) is type(arg) and value == arg for arg in args)
    scalar = _SCALARS.get(hint)
    if scalar is not None:
        return scalar(value)
    if typing.is_typeddict(hint):
        return isinstance(value, dict)
    container = origin or hint
    if container in (list, collections.abc.Sequence):
        item_hint = args[0] if args else Any
        return isinstance(value, list) and all(_conforms(v, item_hint) for v in value)
    if container is tuple:
        return isinstance(value, list) and _conforms_tuple(value, args)
    if container in (dict, collections.abc.Mapping):
        value_hint = args[1] if args else Any
        return isinstance(value, dict) and all(
            isinstance(k, str) and _conforms(v, value_hint) for k, v in value.items()
        )
    return True


def _conforms_tuple(value: list[Any], args: tuple[Any, ...]) -> bool:
    if not args:
        return True
    if len(args) == 2 and args[1] is Ellipsis:
        return all(_conforms(v, args[0]) for v in value)
    return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args,
                                                                              strict=True))


_SCALARS: Final[dict[Any, Callable[[Any], bool]]] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}
