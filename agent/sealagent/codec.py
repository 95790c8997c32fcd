"""A JSON codec for frozen dataclasses of plain values: the messages of sealagent.

A :class:`Message` subclass is a frozen dataclass whose fields are ``str``, ``int``,
``float``, ``bool``, ``None``, JSON objects, other messages, tuples, enums, types with a
wire form of their own and unions of those.
``message.to_json()`` gives a JSON-ready ``dict`` (tuples become lists) and
``Type.from_json(data)`` rebuilds it, checking every field against its type hint, so a
message read from the network or a file is as trustworthy as one built in memory.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self

from sealagent.errors import InvalidInputError, SealAgentError

HEX32_LEN: Final = 64
"""Length of a 32-byte value written as hex."""


@dataclass(frozen=True)
class Message:
    """Base of every message: a frozen dataclass of plain, JSON-ready values.

    Fields may be ``int``, ``float``, ``str``, ``bool``, ``None``, JSON objects
    (``dict[str, Any]``), tuples, other messages, enums (by value) and types with a wire
    form of their own (a ``to_wire()`` method and a ``from_wire(value)`` class method, as
    :class:`~sealagent.vocab.sectors.FileType` and
    :class:`~sealagent.vocab.sectors.SectorID` have).
    """

    ignore_unknown: ClassVar[bool] = False
    """True where fields a newer writer added are skipped rather than refused."""

    def to_json(self) -> dict[str, Any]:
        """The message as a JSON-ready ``dict`` (tuples become lists)."""
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Rebuild a message from :meth:`to_json` output, checking every field's type.

        :raises InvalidInputError: a field is missing, unknown or of the wrong type.
        """
        if not isinstance(data, dict):
            raise InvalidInputError(f"{cls.__name__}: expected a JSON object, "
                                    f"got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown and not cls.ignore_unknown:
            raise InvalidInputError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, field in fields.items():
            if name in data:
                values[name] = _decode(data[name], hints[name], f"{cls.__name__}.{name}")
            elif (field.default is dataclasses.MISSING
                  and field.default_factory is dataclasses.MISSING):
                raise InvalidInputError(f"{cls.__name__}: missing field {name!r}")
        return cls(**values)


def _encode(value: Any) -> Any:
    """Turn a field value into JSON-ready data."""
    if isinstance(value, Message):
        return value.to_json()
    if callable(getattr(value, "to_wire", None)):
        return value.to_wire()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert it (lists to tuples, messages)."""
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        for option in typing.get_args(hint):
            try:
                return _decode(value, option, where)
            except InvalidInputError:
                continue
        raise InvalidInputError(f"{where}: {value!r} is not a valid {hint}")
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise InvalidInputError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_decode(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise InvalidInputError(f"{where}: expected an object, got {type(value).__name__}")
        return dict(value)
    if hint is type(None):
        if value is not None:
            raise InvalidInputError(f"{where}: expected null")
        return None
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, Message):
        return hint.from_json(value)
    from_wire = getattr(hint, "from_wire", None)
    if isinstance(hint, type) and callable(from_wire):
        try:
            return from_wire(value)
        except SealAgentError as exc:
            raise InvalidInputError(f"{where}: {exc}") from None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_member(value, hint, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise InvalidInputError(f"{where}: expected {hint.__name__}, got a boolean")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    name = getattr(hint, "__name__", str(hint))
    raise InvalidInputError(f"{where}: expected {name}, got {type(value).__name__}")


def _enum_member(value: Any, hint: type[enum.Enum], where: str) -> Any:
    """The member of ``hint`` whose value is ``value``."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInputError(f"{where}: expected a {hint.__name__}, got {value!r}")
    try:
        return hint(value)
    except ValueError:
        raise InvalidInputError(f"{where}: {value!r} is not a {hint.__name__}") from None


def check_hex(value: str, where: str, *, length: int | None = HEX32_LEN) -> str:
    """Validate lower-case hex text (by default of a 32-byte value) and return it."""
    if length is not None and len(value) != length:
        raise InvalidInputError(f"{where}: expected {length} hex digits, got {len(value)}")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise InvalidInputError(f"{where}: not hex: {value!r}") from None
    if value != value.lower():
        raise InvalidInputError(f"{where}: hex must be lower-case")
    return value
