"""Sector files: the file types (Lotus' bit values), sector ids and their names.

A storage path holds one directory per file type, each holding one entry per sector named
``s-t0<miner>-<number>`` (Lotus' layout); :mod:`sealagent.storage.layout` describes the
directories and the space each type takes.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Final, NamedTuple, Self

from sealagent.errors import ConfigError

_SECTOR_NAME = re.compile(r"s-t0([0-9]{1,20})-([0-9]{1,20})")
U64_LIMIT: Final = 2**64
"""Miner actor ids and sector numbers are unsigned 64-bit integers (as on chain)."""


class FileType(enum.IntFlag):
    """Sector file types, with Lotus' bit values."""

    UNSEALED = 1
    SEALED = 2
    CACHE = 4
    UPDATE = 8
    UPDATE_CACHE = 16
    PIECE = 32

    @property
    def dir_name(self) -> str:
        """Directory (and wire) name: ``unsealed``, ..., ``update-cache``, ``piece``."""
        if self.name is None or self not in ALL_FILE_TYPES:
            raise ConfigError(f"{self!r} is not a single file type")
        return self.name.lower().replace("_", "-")

    def to_wire(self) -> str:
        """The form messages carry: the directory name (one file type only)."""
        return self.dir_name

    @classmethod
    def from_wire(cls, value: object) -> FileType:
        """Read :meth:`to_wire` output (ConfigError when it names no file type)."""
        if not isinstance(value, str):
            raise ConfigError(f"expected a file type name, got {value!r}")
        return cls.parse(value)

    @property
    def is_dir(self) -> bool:
        """True for the types stored as a directory (``cache``, ``update-cache``)."""
        return self in (FileType.CACHE, FileType.UPDATE_CACHE)

    @classmethod
    def parse(cls, name: str) -> FileType:
        """The file type called ``name`` (``cache``, ``update-cache``...)."""
        for file_type in ALL_FILE_TYPES:
            if file_type.dir_name == name:
                return file_type
        raise ConfigError(
            f"unknown file type {name!r}; expected one of "
            + ", ".join(t.dir_name for t in ALL_FILE_TYPES)
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The directory names of the single types this set holds."""
        return tuple(t.dir_name for t in self.split())

    def split(self) -> tuple[FileType, ...]:
        """The single file types this set holds, in bit order (cached: the scheduler
        splits a set for every task it queues)."""
        found = _SPLIT.get(self.value)
        if found is None:
            found = _SPLIT[self.value] = tuple(t for t in ALL_FILE_TYPES if t & self)
        return found


ALL_FILE_TYPES: Final = (FileType.UNSEALED, FileType.SEALED, FileType.CACHE,
                         FileType.UPDATE, FileType.UPDATE_CACHE, FileType.PIECE)
"""Every single file type, in bit order."""

SECTOR_FILES: Final = FileType.UNSEALED | FileType.SEALED | FileType.CACHE
"""The files of a sector the sealing phases use (:class:`~sealagent.phases.SectorPaths`)."""

_SPLIT: dict[int, tuple[FileType, ...]] = {}


class _SectorKey(NamedTuple):
    miner: int
    number: int


class SectorID(_SectorKey):
    """A sector: the miner's actor id and the sector number.

    A tuple ``(miner, number)``: hashable, ordered, and cheap as a dictionary key (the
    scheduler and the storage index key everything on it).
    """

    __slots__ = ()

    def __new__(cls, miner: int, number: int) -> Self:
        """Check both are unsigned 64-bit integers (ConfigError otherwise)."""
        for field, value in (("miner", miner), ("number", number)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"sector {field} must be a non-negative integer, got {value!r}")
            if value >= U64_LIMIT:
                raise ConfigError(f"sector {field} {value} does not fit 64 bits")
        return super().__new__(cls, miner, number)

    @property
    def name(self) -> str:
        """``s-t0<miner>-<number>``, the name of the sector's files."""
        return f"s-t0{self.miner}-{self.number}"

    @classmethod
    def parse(cls, name: str) -> SectorID:
        """Parse ``s-t0<miner>-<number>`` (ASCII digits only, each part within 64 bits)."""
        match = _SECTOR_NAME.fullmatch(name)
        if match is None:
            raise ConfigError(f"not a sector file name: {name!r} (expected s-t0<miner>-<number>)")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return self.name

    def to_wire(self) -> dict[str, int]:
        """The form messages carry: ``{"miner", "number"}``."""
        return {"miner": self.miner, "number": self.number}

    @classmethod
    def from_wire(cls, value: object) -> SectorID:
        """Read :meth:`to_wire` output (ConfigError when it is not a sector)."""
        if not isinstance(value, dict):
            raise ConfigError(f"expected an object {{miner, number}}, got {value!r}")
        miner, number = value.get("miner"), value.get("number")
        if not isinstance(miner, int) or not isinstance(number, int):
            raise ConfigError(f"expected integers miner and number, got {value!r}")
        return cls(miner, number)


def sector_path(root: str | Path, file_type: FileType, sector: SectorID) -> Path:
    """``<root>/<type>/s-t0<miner>-<number>``."""
    return Path(root) / file_type.dir_name / sector.name
