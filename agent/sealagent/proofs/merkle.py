"""Merkle trees as rust-fil-proofs builds, stores and proves them (docs/porep.md §7, §9.6).

A tree is built over 32-byte leaves (a numpy ``(n, 32)`` uint8 array, typically an
``np.memmap`` of a layer or replica file) with a *hasher*: SHA256-trunc254 for tree_d,
Poseidon for tree_c and tree_r_last.  Leaves are never hashed themselves; a parent is the
hash of its ``arity`` children in order.  Building goes through the leaves one aligned
chunk at a time, so memory stays bounded whatever the sector size.

Compound shapes (docs/porep.md §7.5): the leaves are split into ``B`` equal base trees (one file
each, ``<id>-<i>``, when ``B > 1``); their roots are hashed in groups of ``sub`` arity and,
for three-level shapes, those in turn with the ``top`` arity.

On disk (merkletree 0.23 stores):

* ``DiskStore`` (tree_d, tree_c): every row from the leaves up to the root, 32 bytes a
  node, row after row.
* ``LevelCacheStore`` (tree_r_last): the leaves are *not* in the file (they are the sealed
  replica) and neither are the ``rows_to_discard`` rows above them; the file holds the rows
  from ``rows_to_discard + 1`` up to the root.  Proofs rebuild the missing rows of the one
  segment of ``arity^(rows_to_discard+1)`` leaves that contains the challenged leaf.

:class:`MerkleProof` mirrors storage-proofs-core's ``MerkleProof`` (Single / Sub / Top) and
its serde JSON form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from sealagent.errors import CorruptDataError, InvalidInputError
from sealagent.proofs.cache_files import (
    TREE_C_ID,
    TREE_D_ID,
    TREE_R_LAST_ID,
    data_path,
    split_ids,
)
from sealagent.proofs.poseidon import ARITIES, poseidon_hash_level
from sealagent.proofs.sha_tree import PairHasher, hash_pairs, sha256_hash_level
from sealagent.vocab.registry import SectorShape

NODE_BYTES: Final = 32
"""Bytes per tree node."""

DEFAULT_CHUNK_LEAVES: Final = 1 << 18
"""Leaves hashed per building step (8 MiB of leaves), rounded down to a subtree."""

DEFAULT_ROWS_TO_DISCARD: Final = 2
"""rust-fil-proofs' ``DEFAULT_ROWS_TO_DISCARD`` for oct trees."""

_MAX_ROWS_TO_DISCARD: Final = {2: 7, 4: 5}

Nodes: TypeAlias = npt.NDArray[np.uint8]
"""A ``(n, 32)`` uint8 array of tree nodes."""

LevelHashFn: TypeAlias = Callable[[Nodes, int], Nodes]
"""Hashes a row ``(arity·n, 32)`` into its parent row ``(n, 32)``; the int is the arity."""

ProofKind: TypeAlias = Literal["Single", "Sub", "Top"]


@dataclass(frozen=True)
class TreeHasher:
    """A node hash: a name, the arities it supports and a row-at-a-time hash function."""

    name: str
    arities: tuple[int, ...]
    hash_level: LevelHashFn

    def check_arity(self, arity: int) -> None:
        """Raise InvalidInputError unless this hasher can hash groups of ``arity``."""
        if arity not in self.arities:
            raise InvalidInputError(
                f"{self.name} trees support arities {self.arities}, not {arity}"
            )

    def hash_row(self, row: Nodes, arity: int) -> Nodes:
        """Hash ``row`` in consecutive groups of ``arity`` nodes."""
        self.check_arity(arity)
        return self.hash_level(row, arity)

    def hash_children(self, children: Sequence[bytes]) -> bytes:
        """The parent of ``children`` (32-byte nodes, in order)."""
        row = np.frombuffer(b"".join(children), dtype=np.uint8).reshape(-1, NODE_BYTES)
        return self.hash_row(row, len(children)).tobytes()


def sha256_tree_hasher(pair_hasher: PairHasher = hash_pairs) -> TreeHasher:
    """SHA256-trunc254 binary hashing with ``pair_hasher`` (:data:`SHA256_HASHER`'s is
    :func:`~sealagent.proofs.sha_tree.hash_pairs`; a faster one must give the same digests)."""

    def hash_level(row: Nodes, arity: int) -> Nodes:
        if arity != 2:
            raise InvalidInputError(f"sha256 trees are binary, not {arity}-ary")
        return sha256_hash_level(row, pair_hasher)

    return TreeHasher("sha256", (2,), hash_level)


POSEIDON_HASHER: Final = TreeHasher("poseidon", ARITIES, poseidon_hash_level)
"""Poseidon MerkleTree-tagged hashing (tree_c, tree_r_last)."""

SHA256_HASHER: Final = sha256_tree_hasher()
"""SHA256-trunc254 binary hashing (tree_d, CommP)."""


@dataclass(frozen=True)
class TreeShape:
    """Base, sub and top arity of a (compound) tree; 0 means the level is absent."""

    base: int
    sub: int = 0
    top: int = 0

    def __post_init__(self) -> None:
        """Reject shapes merkletree cannot build."""
        for arity in (self.base, self.sub, self.top):
            if arity < 0 or arity & (arity - 1) or arity == 1:
                raise InvalidInputError(f"tree arities must be 0 or powers of two ≥ 2: {self}")
        if self.base < 2 or (self.top and not self.sub):
            raise InvalidInputError(f"a tree needs a base arity, and a sub level under top: {self}")

    @classmethod
    def of(cls, sector: SectorShape) -> TreeShape:
        """The shape of tree_c and tree_r_last of a sector (e.g. 8-8-2 for 64 GiB)."""
        return cls(sector.base_arity, sector.sub_arity, sector.top_arity)

    @property
    def base_tree_count(self) -> int:
        """Number of base trees (and files)."""
        return max(self.sub, 1) * max(self.top, 1)

    def __str__(self) -> str:
        """``base-sub-top``, as rust-fil-proofs names shapes."""
        return f"{self.base}-{self.sub}-{self.top}"


BINARY: Final = TreeShape(2)
"""The shape of tree_d."""


def tree_height(n_leaves: int, arity: int) -> int:
    """Number of hashing levels ``h`` with ``arity^h = n_leaves`` (at least one)."""
    height, size = 0, 1
    while size < n_leaves:
        size *= arity
        height += 1
    if size != n_leaves or height == 0:
        raise InvalidInputError(f"{n_leaves} leaves do not make a full {arity}-ary tree")
    return height


def default_rows_to_discard(n_leaves: int, arity: int) -> int:
    """storage-proofs-core ``default_rows_to_discard`` (tree_r_last), for ``n_leaves`` per tree."""
    row_count = tree_height(n_leaves, arity) + 1
    if row_count <= 2:
        return 0
    if row_count == 3:
        return 1
    return min(row_count - 2, _MAX_ROWS_TO_DISCARD.get(arity, DEFAULT_ROWS_TO_DISCARD))


def _check_nodes(nodes: Nodes, what: str = "leaves") -> None:
    """Reject anything but a ``(n, 32)`` uint8 array."""
    if not isinstance(nodes, np.ndarray) or nodes.dtype != np.uint8 or nodes.ndim != 2 \
            or nodes.shape[1] != NODE_BYTES:
        shape = getattr(nodes, "shape", None)
        raise InvalidInputError(f"{what} must be a (n, 32) uint8 array, got {shape}")


def _row_segments(
    leaves: Nodes, arity: int, hasher: TreeHasher, chunk_leaves: int
) -> Iterator[tuple[int, int, Nodes]]:
    """Every row above the leaves as ``(row, first node, nodes)`` pieces, bottom-up per chunk.

    The leaves are taken ``arity^k`` at a time (the biggest such subtree that fits in
    ``chunk_leaves``); each chunk yields its pieces of rows ``1…k``.  The chunk roots form
    row ``k``, from which the rows above are computed at the end in one piece each.
    """
    hasher.check_arity(arity)
    height = tree_height(leaves.shape[0], arity)
    if chunk_leaves < 1:
        raise InvalidInputError(f"chunk_leaves must be positive, got {chunk_leaves}")
    levels, span = 1, arity
    while levels < height and span * arity <= chunk_leaves:
        levels, span = levels + 1, span * arity
    tops = []
    for chunk, start in enumerate(range(0, leaves.shape[0], span)):
        row = np.ascontiguousarray(leaves[start : start + span])
        for level in range(1, levels + 1):
            row = hasher.hash_row(row, arity)
            yield level, chunk * row.shape[0], row
        tops.append(row)
    row = np.concatenate(tops)
    for level in range(levels + 1, height + 1):
        row = hasher.hash_row(row, arity)
        yield level, 0, row


def tree_rows(leaves: Nodes, arity: int, hasher: TreeHasher) -> list[Nodes]:
    """Every row of one (non-compound) tree, leaves first and root last, in memory."""
    _check_nodes(leaves)
    n = leaves.shape[0]
    height = tree_height(n, arity)
    rows: list[Nodes] = [np.asarray(leaves)]
    rows += [np.empty((n // arity**k, NODE_BYTES), dtype=np.uint8) for k in range(1, height + 1)]
    for level, first, nodes in _row_segments(leaves, arity, hasher, DEFAULT_CHUNK_LEAVES):
        rows[level][first : first + nodes.shape[0]] = nodes
    return rows


def _base_root(leaves: Nodes, arity: int, hasher: TreeHasher, chunk_leaves: int) -> bytes:
    """Root of one base tree, keeping only one chunk of rows in memory."""
    root = b""
    for _, _, nodes in _row_segments(leaves, arity, hasher, chunk_leaves):
        root = nodes[-1].tobytes()
    return root


def compound_root(base_roots: Sequence[bytes], shape: TreeShape, hasher: TreeHasher) -> bytes:
    """Combine the roots of the base trees (docs/porep.md §7.5); one base tree is its own root."""
    if len(base_roots) != shape.base_tree_count:
        raise InvalidInputError(
            f"shape {shape} has {shape.base_tree_count} base trees, got {len(base_roots)} roots"
        )
    roots = list(base_roots)
    for arity in (shape.sub, shape.top):
        if arity:
            roots = [hasher.hash_children(roots[i : i + arity])
                     for i in range(0, len(roots), arity)]
    return roots[0]


def _split(leaves: Nodes, shape: TreeShape) -> list[Nodes]:
    """The leaves of each base tree (contiguous, equal ranges)."""
    _check_nodes(leaves)
    count = shape.base_tree_count
    if leaves.shape[0] % count:
        raise InvalidInputError(f"{leaves.shape[0]} leaves cannot be split into {count} trees")
    per_tree = leaves.shape[0] // count
    tree_height(per_tree, shape.base)
    return [leaves[i * per_tree : (i + 1) * per_tree] for i in range(count)]


def merkle_root(
    leaves: Nodes, shape: TreeShape, hasher: TreeHasher, chunk_leaves: int = DEFAULT_CHUNK_LEAVES
) -> bytes:
    """Root of the (compound) tree over ``leaves``, without writing anything."""
    roots = [_base_root(part, shape.base, hasher, chunk_leaves) for part in _split(leaves, shape)]
    return compound_root(roots, shape, hasher)


# --------------------------------------------------------------------------------------
# Inclusion proofs


@dataclass(frozen=True)
class PathElement:
    """One level of an inclusion path: the siblings in order and the position among them."""

    hashes: tuple[bytes, ...]
    index: int

    @property
    def arity(self) -> int:
        """Children of the node this level hashes into."""
        return len(self.hashes) + 1

    def parent(self, node: bytes, hasher: TreeHasher) -> bytes:
        """Hash ``node`` inserted at ``index`` among the siblings."""
        if not 0 <= self.index < self.arity:
            raise InvalidInputError(f"path index {self.index} is outside 0..{self.arity - 1}")
        children = [*self.hashes[: self.index], node, *self.hashes[self.index :]]
        return hasher.hash_children(children)


def domain_to_json(value: bytes) -> list[int]:
    """A domain as serde writes ``[u8; 32]``: an array of 32 ints."""
    return list(value)


def domain_from_json(obj: Any) -> bytes:
    """Parse a 32-int array back into 32 bytes."""
    if not isinstance(obj, list) or len(obj) != NODE_BYTES or not all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in obj
    ):
        raise InvalidInputError("a domain must be an array of 32 ints in 0..255")
    return bytes(obj)


def _path_json(path: Sequence[PathElement]) -> dict[str, Any]:
    """``InclusionPath`` in serde form: ``{"path": [{"hashes": [...], "index": i}]}``."""
    return {"path": [{"hashes": [domain_to_json(h) for h in el.hashes], "index": el.index}
                     for el in path]}


def _path_from_json(obj: Any) -> tuple[PathElement, ...]:
    """Parse an ``InclusionPath``."""
    if not isinstance(obj, dict) or not isinstance(obj.get("path"), list):
        raise InvalidInputError('an inclusion path must be {"path": [...]}')
    elements = []
    for el in obj["path"]:
        if not isinstance(el, dict) or not isinstance(el.get("hashes"), list):
            raise InvalidInputError('a path element must be {"hashes": [...], "index": i}')
        index = el.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidInputError("a path element index must be a non-negative int")
        elements.append(PathElement(tuple(domain_from_json(h) for h in el["hashes"]), index))
    return tuple(elements)


@dataclass(frozen=True)
class MerkleProof:
    """An inclusion proof of ``leaf`` under ``root`` (storage-proofs-core ``MerkleProof``).

    ``base_path`` climbs the base tree; ``sub_path`` and ``top_path`` (one level each) are
    present for compound trees: both absent = ``Single``, ``sub_path`` only = ``Sub``, both =
    ``Top``.
    """

    hasher: TreeHasher
    root: bytes
    leaf: bytes
    base_path: tuple[PathElement, ...]
    sub_path: tuple[PathElement, ...] | None = None
    top_path: tuple[PathElement, ...] | None = None

    def __post_init__(self) -> None:
        """Reject a ``Top`` proof without a sub level and domains that are not 32 bytes."""
        if self.top_path is not None and self.sub_path is None:
            raise InvalidInputError("a Top proof also needs a sub path")
        for value in (self.root, self.leaf, *(h for el in self.path for h in el.hashes)):
            if len(value) != NODE_BYTES:
                raise InvalidInputError(f"proof domains are {NODE_BYTES} bytes, got {len(value)}")

    @property
    def kind(self) -> ProofKind:
        """``Single``, ``Sub`` or ``Top`` (the serde variant)."""
        if self.sub_path is None:
            return "Single"
        return "Sub" if self.top_path is None else "Top"

    @property
    def path(self) -> tuple[PathElement, ...]:
        """All levels from the leaf up: base, then sub, then top."""
        return self.base_path + (self.sub_path or ()) + (self.top_path or ())

    @property
    def arities(self) -> tuple[int, ...]:
        """The arity of each level, from the leaf up."""
        return tuple(el.arity for el in self.path)

    def leaf_index(self) -> int:
        """The proven leaf's index: ``Σ index_k · Π_{i<k} arity_i``."""
        index, weight = 0, 1
        for el in self.path:
            index += el.index * weight
            weight *= el.arity
        return index

    def proves_index(self, index: int) -> bool:
        """Whether the path leads to leaf ``index``."""
        return self.leaf_index() == index

    def computed_root(self) -> bytes:
        """Hash ``leaf`` up the path (raises InvalidInputError on a malformed path)."""
        node = self.leaf
        for el in self.path:
            node = el.parent(node, self.hasher)
        return node

    def verify(self) -> bool:
        """Whether the path hashes ``leaf`` up to ``root``."""
        try:
            return self.computed_root() == self.root
        except InvalidInputError:
            return False

    def to_json(self) -> dict[str, Any]:
        """serde form: ``{"data": {"Single": {"root", "leaf", "path"}}}`` and so on."""
        root, leaf = domain_to_json(self.root), domain_to_json(self.leaf)
        if self.sub_path is None:
            body = {"root": root, "leaf": leaf, "path": _path_json(self.base_path)}
        else:
            body = {"base_proof": _path_json(self.base_path),
                    "sub_proof": _path_json(self.sub_path)}
            if self.top_path is not None:
                body["top_proof"] = _path_json(self.top_path)
            body |= {"root": root, "leaf": leaf}
        return {"data": {self.kind: body}}

    @classmethod
    def from_json(cls, obj: Any, hasher: TreeHasher) -> MerkleProof:
        """Parse the serde form (the hasher is not part of it: the caller knows the tree)."""
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, dict) or len(data) != 1:
            raise InvalidInputError('a Merkle proof must be {"data": {<variant>: {...}}}')
        ((kind, body),) = data.items()
        if kind not in ("Single", "Sub", "Top") or not isinstance(body, dict):
            raise InvalidInputError(f"unknown Merkle proof variant {kind!r}")
        try:
            root, leaf = domain_from_json(body["root"]), domain_from_json(body["leaf"])
            if kind == "Single":
                return cls(hasher, root, leaf, _path_from_json(body["path"]))
            sub = _path_from_json(body["sub_proof"])
            top = _path_from_json(body["top_proof"]) if kind == "Top" else None
            return cls(hasher, root, leaf, _path_from_json(body["base_proof"]), sub, top)
        except KeyError as exc:
            raise InvalidInputError(f"{kind} Merkle proof lacks {exc}") from None


# --------------------------------------------------------------------------------------
# Trees on disk


@dataclass(frozen=True)
class TreeLayout:
    """How one (compound) tree lives in a cache directory, and how to build and prove it.

    ``level_cache`` selects merkletree's ``LevelCacheStore`` (leaves not stored; also the
    ``rows_to_discard`` rows above them omitted); otherwise it is a ``DiskStore`` of every
    row and ``rows_to_discard`` must be 0.
    """

    cache_dir: Path
    store_id: str
    n_leaves: int
    shape: TreeShape
    hasher: TreeHasher
    level_cache: bool = False
    rows_to_discard: int = 0

    def __post_init__(self) -> None:
        """Check that the leaf count fits the shape and the discarded rows the tree."""
        self.hasher.check_arity(self.shape.base)
        for arity in (self.shape.sub, self.shape.top):
            if arity:
                self.hasher.check_arity(arity)
        count = self.shape.base_tree_count
        if self.n_leaves < 1 or self.n_leaves % count:
            raise InvalidInputError(f"{self.n_leaves} leaves cannot be split into {count} trees")
        height = tree_height(self.n_leaves // count, self.shape.base)
        if self.rows_to_discard < 0 or (self.rows_to_discard and not self.level_cache):
            raise InvalidInputError("rows_to_discard applies only to level-cache trees (≥ 0)")
        if self.level_cache and self.rows_to_discard >= height:
            raise InvalidInputError(
                f"cannot discard {self.rows_to_discard} rows of a tree with {height + 1} rows"
            )

    @property
    def leaves_per_tree(self) -> int:
        """Leaves of each base tree."""
        return self.n_leaves // self.shape.base_tree_count

    @property
    def height(self) -> int:
        """Hashing levels of a base tree."""
        return tree_height(self.leaves_per_tree, self.shape.base)

    @property
    def first_stored_row(self) -> int:
        """The lowest row in the files (0 = the leaves)."""
        return self.rows_to_discard + 1 if self.level_cache else 0

    def paths(self) -> list[Path]:
        """One file per base tree: ``sc-02-data-<id>[-<i>].dat``."""
        return [data_path(self.cache_dir, sid)
                for sid in split_ids(self.store_id, self.shape.base_tree_count)]

    def _row_sizes(self) -> list[int]:
        """Nodes in each row of a base tree, leaves first."""
        return [self.leaves_per_tree // self.shape.base**k for k in range(self.height + 1)]

    def _row_offset(self, row: int) -> int:
        """Offset (in nodes) of ``row`` within a base tree file."""
        return sum(self._row_sizes()[self.first_stored_row : row])

    def file_nodes(self) -> int:
        """Nodes in each base tree file."""
        return self._row_offset(self.height + 1)

    def build(self, leaves: Nodes, chunk_leaves: int = DEFAULT_CHUNK_LEAVES) -> bytes:
        """Write every base tree file from ``leaves`` (array or memmap); return the root."""
        parts = _split(leaves, self.shape)
        if leaves.shape[0] != self.n_leaves:
            raise InvalidInputError(f"expected {self.n_leaves} leaves, got {leaves.shape[0]}")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        roots = []
        for path, part in zip(self.paths(), parts, strict=True):
            with open(path, "wb") as out:
                out.truncate(self.file_nodes() * NODE_BYTES)
                if not self.level_cache:
                    for start in range(0, part.shape[0], chunk_leaves):
                        out.write(np.ascontiguousarray(part[start : start + chunk_leaves]).data)
                root = b""
                for row, first, nodes in _row_segments(part, self.shape.base, self.hasher,
                                                       chunk_leaves):
                    if row >= self.first_stored_row:
                        out.seek((self._row_offset(row) + first) * NODE_BYTES)
                        out.write(nodes.data)
                    root = nodes[-1].tobytes()  # the root row comes last
            roots.append(root)
        return compound_root(roots, self.shape, self.hasher)

    def _check_files(self) -> list[Path]:
        """The files, each present and of the expected size."""
        paths = self.paths()
        want = self.file_nodes() * NODE_BYTES
        for path in paths:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise CorruptDataError(f"tree file {path} is missing") from None
            if size != want:
                raise CorruptDataError(f"tree file {path} has {size} bytes, expected {want}")
        return paths

    def base_roots(self) -> list[bytes]:
        """The root of each base tree (the last node of its file)."""
        roots = []
        for path in self._check_files():
            with open(path, "rb") as f:
                f.seek(-NODE_BYTES, 2)
                roots.append(f.read(NODE_BYTES))
        return roots

    def root(self) -> bytes:
        """The root of the whole tree, from the files."""
        return compound_root(self.base_roots(), self.shape, self.hasher)

    def prove(self, index: int, leaves: Nodes | None = None) -> MerkleProof:
        """Inclusion proof of leaf ``index``.

        ``leaves`` (the whole leaf array, e.g. a memmap of the replica) is required for
        level-cache trees, whose files lack the bottom rows; for them the rows of the
        segment holding ``index`` are rebuilt, and checked against the first stored row.
        """
        if not 0 <= index < self.n_leaves:
            raise InvalidInputError(f"leaf {index} is outside 0..{self.n_leaves - 1}")
        if self.level_cache:
            if leaves is None:
                raise InvalidInputError("a level-cache tree needs its leaves to prove inclusion")
            _check_nodes(leaves)
            if leaves.shape[0] != self.n_leaves:
                raise InvalidInputError(f"expected {self.n_leaves} leaves, got {leaves.shape[0]}")
        tree, position = divmod(index, self.leaves_per_tree)
        path = self._check_files()[tree]
        with open(path, "rb") as f:
            read = self._reader(f)
            groups: list[bytes] = []
            if leaves is not None and self.level_cache:
                groups = self._segment_groups(leaves, index, read, path)
            leaf = (groups[0][position % self.shape.base * NODE_BYTES:][:NODE_BYTES] if groups
                    else read(0, position, 1))
            groups += self._stored_groups(read, len(groups),
                                          position // self.shape.base**len(groups))
        return self._with_compound_levels(leaf, self._base_path(groups, position), tree)

    def prove_stored(self, row: int, index: int) -> MerkleProof:
        """Inclusion proof of node ``index`` of ``row`` (numbered across the base trees,
        as leaves are), read from the files alone: its ``leaf`` is that stored node.

        ``row`` must be one the files keep (``first_stored_row`` up to the root row).  A
        proof that does not verify, or whose root is not the expected one, shows that the
        stored rows are damaged along that node's path.
        """
        if not self.first_stored_row <= row <= self.height:
            raise InvalidInputError(f"row {row} is not stored (rows {self.first_stored_row}.."
                                    f"{self.height})")
        per_tree = self.leaves_per_tree // self.shape.base**row
        if not 0 <= index < per_tree * self.shape.base_tree_count:
            raise InvalidInputError(f"row {row} has no node {index}")
        tree, position = divmod(index, per_tree)
        with open(self._check_files()[tree], "rb") as f:
            read = self._reader(f)
            node = read(row, position, 1)
            groups = self._stored_groups(read, row, position)
        return self._with_compound_levels(node, self._base_path(groups, position), tree)

    def _reader(self, f: BinaryIO) -> Callable[[int, int, int], bytes]:
        """``read(row, first, count)``: ``count`` nodes of a stored row of the open file."""

        def read(row: int, first: int, count: int) -> bytes:
            f.seek((self._row_offset(row) + first) * NODE_BYTES)
            return f.read(count * NODE_BYTES)

        return read

    def _stored_groups(self, read: Callable[[int, int, int], bytes], row: int,
                       position: int) -> list[bytes]:
        """The groups of siblings (the node included) of node ``position`` of ``row`` and of
        its ancestors, up to the root, as the file stores them."""
        arity, groups = self.shape.base, []
        for level in range(row, self.height):
            groups.append(read(level, position // arity * arity, arity))
            position //= arity
        return groups

    def _base_path(self, groups: list[bytes], position: int) -> tuple[PathElement, ...]:
        """The path of node ``position`` of the lowest group's row through ``groups``."""
        arity, path = self.shape.base, []
        for raw in groups:
            at = position % arity
            nodes = [raw[i : i + NODE_BYTES] for i in range(0, len(raw), NODE_BYTES)]
            path.append(PathElement(tuple(nodes[:at] + nodes[at + 1 :]), at))
            position //= arity
        return tuple(path)

    def _segment_groups(
        self, leaves: Nodes, index: int, read: Callable[[int, int, int], bytes], path: Path
    ) -> list[bytes]:
        """The sibling groups of ``index`` in the rows a level-cache file lacks, rebuilt.

        Rebuilds the subtree of ``arity^first_stored_row`` leaves holding ``index`` and
        checks its root against the file.
        """
        arity, top = self.shape.base, self.first_stored_row
        span = arity**top
        start = index // span * span
        rows = tree_rows(np.ascontiguousarray(leaves[start : start + span]), arity, self.hasher)
        cached = start % self.leaves_per_tree // span
        if rows[top].tobytes() != read(top, cached, 1):
            raise CorruptDataError(f"leaves {start}..{start + span - 1} do not hash to node "
                                   f"{cached} of row {top} kept in {path}")
        local = index - start
        return [rows[row][local // arity**(row + 1) * arity:][:arity].tobytes()
                for row in range(top)]

    def _with_compound_levels(
        self, leaf: bytes, base_path: tuple[PathElement, ...], tree: int
    ) -> MerkleProof:
        """Add the sub and top levels above base tree ``tree`` and the root."""
        if not self.shape.sub:
            return MerkleProof(self.hasher, self.root(), leaf, base_path)
        roots = self.base_roots()
        sub = self.shape.sub
        group = tree // sub * sub
        siblings = roots[group:tree] + roots[tree + 1 : group + sub]
        sub_path = (PathElement(tuple(siblings), tree - group),)
        if not self.shape.top:
            return MerkleProof(self.hasher, compound_root(roots, self.shape, self.hasher), leaf,
                               base_path, sub_path)
        sub_roots = [self.hasher.hash_children(roots[i : i + sub])
                     for i in range(0, len(roots), sub)]
        which = tree // sub
        top_path = (PathElement(tuple(sub_roots[:which] + sub_roots[which + 1 :]), which),)
        root = self.hasher.hash_children(sub_roots)
        return MerkleProof(self.hasher, root, leaf, base_path, sub_path, top_path)


def tree_d_layout(cache_dir: str | Path, sector_size: int) -> TreeLayout:
    """tree_d: binary SHA256 tree over the whole staged sector, every row stored."""
    return TreeLayout(Path(cache_dir), TREE_D_ID, sector_size // NODE_BYTES, BINARY,
                      SHA256_HASHER)


def tree_c_layout(cache_dir: str | Path, sector: SectorShape,
                  hasher: TreeHasher = POSEIDON_HASHER) -> TreeLayout:
    """tree_c: Poseidon tree over the column hashes, every row (leaves included) stored."""
    return TreeLayout(Path(cache_dir), TREE_C_ID, sector.nodes, TreeShape.of(sector), hasher)


def tree_r_last_layout(cache_dir: str | Path, sector: SectorShape,
                       rows_to_discard: int | None = None,
                       hasher: TreeHasher = POSEIDON_HASHER) -> TreeLayout:
    """tree_r_last: Poseidon tree over the replica; files hold only the cached upper rows."""
    if rows_to_discard is None:
        rows_to_discard = default_rows_to_discard(sector.base_tree_leaves, sector.base_arity)
    return TreeLayout(Path(cache_dir), TREE_R_LAST_ID, sector.nodes, TreeShape.of(sector),
                      hasher, level_cache=True, rows_to_discard=rows_to_discard)
