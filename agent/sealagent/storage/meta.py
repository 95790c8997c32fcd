"""What a storage path says about itself (``sectorstore.json``) and its space (FsStat).

``sectorstore.json`` uses Lotus' field names, so a path initialised by Lotus opens here
and the other way round::

    {"ID": "1c2d...", "Weight": 10, "CanSeal": true, "CanStore": false,
     "MaxStorage": 0, "Groups": [], "AllowTo": [], "AllowTypes": [], "DenyTypes": [],
     "AllowMiners": [], "DenyMiners": []}

``Weight`` 0 makes a path read-only (never chosen for new files); ``MaxStorage`` 0 means
no limit beyond the filesystem; empty ``AllowTypes`` allows every file type; Go's
``null`` for an empty list is accepted.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Final

from sealagent.errors import ConfigError, StorageError
from sealagent.vocab.sectors import FileType

_MINER_ADDRESS = re.compile(r"^[ft]0([0-9]+)$")
_LIST_FIELDS: Final = {"Groups": "groups", "AllowTo": "allow_to", "AllowTypes": "allow_types",
                       "DenyTypes": "deny_types", "AllowMiners": "allow_miners",
                       "DenyMiners": "deny_miners"}


def _miner_id(address: str) -> int:
    match = _MINER_ADDRESS.match(address)
    if match is None:
        raise ConfigError(f"not a miner id address: {address!r} (expected f0<id> or t0<id>)")
    return int(match[1])


@dataclass(frozen=True)
class PathMeta:
    """The contents of a path's ``sectorstore.json``."""

    id: str
    weight: int = 10
    can_seal: bool = False
    can_store: bool = False
    max_storage: int = 0
    groups: tuple[str, ...] = ()
    allow_to: tuple[str, ...] = ()
    allow_types: tuple[str, ...] = ()
    deny_types: tuple[str, ...] = ()
    allow_miners: tuple[str, ...] = ()
    deny_miners: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError("a storage path needs an ID")
        if self.weight < 0 or self.max_storage < 0:
            raise ConfigError("Weight and MaxStorage must not be negative")
        for name in (*self.allow_types, *self.deny_types):
            FileType.parse(name)
        for address in (*self.allow_miners, *self.deny_miners):
            _miner_id(address)

    def allows(self, file_type: FileType) -> bool:
        """Whether every type in ``file_type`` may be stored here (AllowTypes/DenyTypes)."""
        return all(
            (not self.allow_types or t.dir_name in self.allow_types)
            and t.dir_name not in self.deny_types
            for t in file_type.split()
        )

    def allows_miner(self, miner: int) -> bool:
        """Whether sectors of ``miner`` may be stored here (AllowMiners/DenyMiners)."""
        allowed = {_miner_id(a) for a in self.allow_miners}
        denied = {_miner_id(a) for a in self.deny_miners}
        return (not allowed or miner in allowed) and miner not in denied

    def to_json(self) -> dict[str, Any]:
        """The ``sectorstore.json`` object."""
        out: dict[str, Any] = {"ID": self.id, "Weight": self.weight, "CanSeal": self.can_seal,
                               "CanStore": self.can_store, "MaxStorage": self.max_storage}
        for key, attr in _LIST_FIELDS.items():
            out[key] = list(getattr(self, attr))
        return out

    @classmethod
    def from_json(cls, obj: Any, origin: str = "sectorstore.json") -> PathMeta:
        """Parse a ``sectorstore.json`` object; StorageError names what is wrong."""
        if not isinstance(obj, dict):
            raise StorageError(f"{origin}: expected a JSON object")
        try:
            path_id = obj["ID"]
        except KeyError:
            raise StorageError(f"{origin}: missing ID") from None
        values: dict[str, Any] = {}
        for key, attr, kind in (("Weight", "weight", int), ("MaxStorage", "max_storage", int),
                                ("CanSeal", "can_seal", bool), ("CanStore", "can_store", bool)):
            value = obj.get(key, getattr(cls, attr))
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise StorageError(f"{origin}: {key} must be {kind.__name__}, got {value!r}")
            values[attr] = value
        for key, attr in _LIST_FIELDS.items():
            items = obj.get(key) or []
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise StorageError(f"{origin}: {key} must be a list of strings")
            values[attr] = tuple(items)
        if not isinstance(path_id, str):
            raise StorageError(f"{origin}: ID must be a string")
        try:
            return cls(path_id, **values)
        except ConfigError as exc:
            raise StorageError(f"{origin}: {exc}") from None


@dataclass(frozen=True)
class FsStat:
    """Space of a storage path, in bytes (Lotus' FsStat).

    ``available`` is what new files may still use: the filesystem's free space minus the
    outstanding reservations, and within ``max`` (MaxStorage) when that is set.
    """

    capacity: int
    available: int
    fs_available: int
    reserved: int
    max: int = 0
    used: int = 0

    def to_json(self) -> dict[str, int]:
        """``{"capacity", "available", "fs_available", "reserved", "max", "used"}``."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Any) -> FsStat:
        """Parse :meth:`to_json` output; StorageError when malformed."""
        try:
            values = {k: obj[k] for k in ("capacity", "available", "fs_available", "reserved")}
            values.update({k: obj.get(k, 0) for k in ("max", "used")})
        except (KeyError, TypeError):
            raise StorageError(f"malformed FsStat: {obj!r}") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in values.values()):
            raise StorageError(f"malformed FsStat: {obj!r}")
        return cls(**values)
