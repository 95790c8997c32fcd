"""The sector cache directory, laid out and named exactly as rust-fil-proofs lays it out.

Files (``<id>`` as in storage-proofs-core ``CacheKey``)::

    sc-02-data-layer-<l>.dat          labels of layer l (PC1)
    sc-02-data-tree-d.dat             tree_d, every row (PC1)
    sc-02-data-tree-c[-<i>].dat       tree_c per base tree (PC2); "-<i>" only when several
    sc-02-data-tree-r-last[-<i>].dat  tree_r_last per base tree, upper rows only (PC2)
    p_aux                             comm_c || comm_r_last (PC2)
    t_aux                             the store configs of labels and trees (PC2)
    syn-porep-vanilla-proofs.dat      persisted synthetic proofs (rust-fil-proofs only)

``p_aux`` and ``t_aux`` are written in bincode 1 (little-endian, fixed-width integers,
``u64`` lengths), the encoding rust-fil-proofs uses, so a cache moves between the two
implementations: ``p_aux`` is the two 32-byte domains; ``t_aux`` is
``TemporaryAux{labels: Labels{labels: Vec<StoreConfig>}, tree_d_config, tree_r_last_config,
tree_c_config}`` where ``StoreConfig{path: String, id: String, size: Option<u64>,
rows_to_discard: u64}``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sealagent.errors import CorruptDataError, InvalidInputError, StorageError
from sealagent.vocab.registry import parse_sector_size

LAYER_KEY: Final = "layer"
TREE_D_ID: Final = "tree-d"
TREE_C_ID: Final = "tree-c"
TREE_R_LAST_ID: Final = "tree-r-last"
P_AUX_FILE: Final = "p_aux"
T_AUX_FILE: Final = "t_aux"
SYNTH_PROOFS_FILE: Final = "syn-porep-vanilla-proofs.dat"


def layer_id(layer: int) -> str:
    """Store id of the labels of ``layer`` (1-based): ``layer-<l>``."""
    if layer < 1:
        raise InvalidInputError(f"layers are numbered from 1, got {layer}")
    return f"{LAYER_KEY}-{layer}"


def data_path(cache_dir: str | Path, store_id: str) -> Path:
    """``<cache_dir>/sc-02-data-<id>.dat`` (merkletree ``StoreConfig::data_path``)."""
    return Path(cache_dir) / f"sc-02-data-{store_id}.dat"


def split_ids(store_id: str, tree_count: int) -> list[str]:
    """Ids of the base trees of a compound tree: the id itself, or ``<id>-<i>`` for several."""
    if tree_count < 1:
        raise InvalidInputError(f"tree_count must be positive, got {tree_count}")
    if tree_count == 1:
        return [store_id]
    return [f"{store_id}-{i}" for i in range(tree_count)]


def layer_path(cache_dir: str | Path, layer: int) -> Path:
    """Path of the labels file of ``layer``."""
    return data_path(cache_dir, layer_id(layer))


@dataclass(frozen=True)
class StoreConfig:
    """Where a store (a label layer or a tree) lives: merkletree's ``StoreConfig``."""

    path: str
    id: str
    size: int | None
    rows_to_discard: int

    def data_path(self) -> Path:
        """The file holding this store."""
        return data_path(self.path, self.id)

    def with_path(self, cache_dir: str | Path) -> StoreConfig:
        """The same store in another cache directory (a moved sector)."""
        return StoreConfig(str(cache_dir), self.id, self.size, self.rows_to_discard)

    def to_json(self) -> dict[str, Any]:
        """serde form: ``{path, id, size, rows_to_discard}``."""
        return {"path": self.path, "id": self.id, "size": self.size,
                "rows_to_discard": self.rows_to_discard}

    @classmethod
    def from_json(cls, obj: Any) -> StoreConfig:
        """Parse the serde form; raise InvalidInputError when malformed."""
        try:
            size = obj["size"]
            config = cls(str(obj["path"]), str(obj["id"]), None if size is None else int(size),
                         int(obj["rows_to_discard"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed store config: {exc}") from None
        if config.rows_to_discard < 0 or (config.size is not None and config.size < 0):
            raise InvalidInputError("store config sizes must be non-negative")
        return config

    def to_bincode(self) -> bytes:
        """bincode 1 encoding (see module docstring)."""
        out = _bincode_str(self.path) + _bincode_str(self.id)
        out += b"\x00" if self.size is None else b"\x01" + struct.pack("<Q", self.size)
        return out + struct.pack("<Q", self.rows_to_discard)

    @classmethod
    def from_bincode(cls, reader: _Reader) -> StoreConfig:
        """Decode one config from ``reader``."""
        path, store_id = reader.string(), reader.string()
        tag = reader.take(1)[0]
        if tag > 1:
            raise CorruptDataError(f"bad Option tag {tag} in t_aux")
        size = reader.u64() if tag else None
        return cls(path, store_id, size, reader.u64())


def _bincode_str(text: str) -> bytes:
    """A bincode string: ``u64`` byte length then UTF-8."""
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


class _Reader:
    """Sequential reader over a bincode buffer that reports truncation as corruption."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        if self.pos + n > len(self.data):
            raise CorruptDataError(f"{self.name} is truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u64(self) -> int:
        """A little-endian ``u64``."""
        return int(struct.unpack("<Q", self.take(8))[0])

    def string(self) -> str:
        """A bincode string."""
        n = self.u64()
        try:
            return self.take(n).decode()
        except UnicodeDecodeError:
            raise CorruptDataError(f"{self.name} holds a string that is not UTF-8") from None

    def finish(self) -> None:
        """Require that everything was read."""
        if self.pos != len(self.data):
            raise CorruptDataError(f"{self.name} has {len(self.data) - self.pos} trailing bytes")


@dataclass(frozen=True)
class PersistentAux:
    """``p_aux``: the two roots comm_r is made of."""

    comm_c: bytes
    comm_r_last: bytes

    def write(self, cache_dir: str | Path) -> Path:
        """Write ``<cache_dir>/p_aux`` (64 bytes)."""
        path = Path(cache_dir) / P_AUX_FILE
        path.write_bytes(self.comm_c + self.comm_r_last)
        return path

    @classmethod
    def read(cls, cache_dir: str | Path) -> PersistentAux:
        """Read ``<cache_dir>/p_aux``; a missing or short file is CorruptDataError."""
        path = Path(cache_dir) / P_AUX_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise CorruptDataError(f"{path} is missing (PC2 not run?)") from None
        if len(raw) != 64:
            raise CorruptDataError(f"{path} has {len(raw)} bytes, expected 64")
        return cls(raw[:32], raw[32:])


@dataclass(frozen=True)
class TemporaryAux:
    """``t_aux``: where the labels and the three trees of a sector are stored."""

    labels: tuple[StoreConfig, ...]
    tree_d_config: StoreConfig
    tree_r_last_config: StoreConfig
    tree_c_config: StoreConfig

    def to_bincode(self) -> bytes:
        """bincode 1 encoding of rust's ``TemporaryAux``."""
        out = struct.pack("<Q", len(self.labels))
        out += b"".join(c.to_bincode() for c in self.labels)
        for config in (self.tree_d_config, self.tree_r_last_config, self.tree_c_config):
            out += config.to_bincode()
        return out

    def write(self, cache_dir: str | Path) -> Path:
        """Write ``<cache_dir>/t_aux``."""
        path = Path(cache_dir) / T_AUX_FILE
        path.write_bytes(self.to_bincode())
        return path

    @classmethod
    def read(cls, cache_dir: str | Path) -> TemporaryAux:
        """Read ``<cache_dir>/t_aux`` and point every config at ``cache_dir``."""
        path = Path(cache_dir) / T_AUX_FILE
        try:
            reader = _Reader(path.read_bytes(), str(path))
        except FileNotFoundError:
            raise CorruptDataError(f"{path} is missing (PC2 not run?)") from None
        count = reader.u64()
        if count > 64:
            raise CorruptDataError(f"{path} claims {count} label layers")
        labels = tuple(StoreConfig.from_bincode(reader) for _ in range(count))
        trees = [StoreConfig.from_bincode(reader) for _ in range(3)]
        reader.finish()
        return cls(
            tuple(c.with_path(cache_dir) for c in labels),
            trees[0].with_path(cache_dir),
            trees[1].with_path(cache_dir),
            trees[2].with_path(cache_dir),
        )


def _remove(paths: list[Path]) -> list[Path]:
    """Delete the files that exist; return those deleted."""
    removed = []
    for path in paths:
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def clear_cache(sector_size: int, cache_dir: str | Path) -> list[Path]:
    """Remove what proving no longer needs: tree_d, every tree_c file and every layer.

    Like rust-fil-proofs' ``clear_cache``: ``p_aux``, ``t_aux`` and the tree_r_last files
    stay (window/winning PoSt read them).  Returns the files removed.
    """
    parse_sector_size(sector_size)
    cache = existing_dir(cache_dir, "cache directory")
    doomed = [data_path(cache, TREE_D_ID)]
    doomed += sorted(cache.glob(f"sc-02-data-{TREE_C_ID}*.dat"))
    doomed += sorted(cache.glob(f"sc-02-data-{LAYER_KEY}*.dat"))
    return _remove(doomed)


def clear_synthetic_proofs(cache_dir: str | Path) -> list[Path]:
    """Remove persisted synthetic vanilla proofs, if any; returns the files removed."""
    cache = existing_dir(cache_dir, "cache directory")
    return _remove([cache / SYNTH_PROOFS_FILE])


def existing_dir(path: str | os.PathLike[str], what: str) -> Path:
    """The directory ``path``, which must exist (StorageError otherwise)."""
    p = Path(path)
    if not p.is_dir():
        problem = "is not a directory" if p.exists() else "does not exist"
        raise StorageError(f"{what} {p} {problem}")
    return p


def sector_file(path: str | os.PathLike[str], sector_size: int, what: str) -> Path:
    """A file that must exist (InvalidInputError) and hold exactly one sector (CorruptDataError)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{what} {p} does not exist")
    size = p.stat().st_size
    if size != sector_size:
        raise CorruptDataError(f"{what} {p} has {size} bytes, expected {sector_size}")
    return p
