"""SHA256-trunc254 binary Merkle trees (CommP, CommD, tree_d).

Leaves are 32-byte nodes taken as they are; an internal node is
``trim(SHA256(left || right))`` (docs/porep.md §3.1).  The hashing goes through hashlib once per
node over slices of one contiguous buffer, and the trim is applied to a whole row at once
with numpy, which is as fast as CPython allows.

For inputs too big to hold, :class:`Sha256TreeBuilder` takes the leaves chunk by chunk
and keeps only the unpaired tail of each row (at most one node per row) between chunks.
It hashes with a :data:`PairHasher`, :func:`hash_pairs` unless a faster one computing the
same digests is given (the ``multicore`` backend's is compiled).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from sealagent.errors import InvalidInputError

NODE_BYTES: Final = 32
"""Bytes per tree node."""

_PAIRS_PER_BATCH: Final = 1 << 14

Buffer: TypeAlias = bytes | bytearray | memoryview | npt.NDArray[np.uint8]
"""Anything that holds whole 32-byte nodes back to back."""
PairHasher: TypeAlias = Callable[[memoryview], npt.NDArray[np.uint8]]
"""Hashes the ``n`` consecutive 64-byte pairs of a flat byte view into the ``(n, 32)`` row of
their trimmed parents (:func:`hash_pairs`)."""


def as_bytes_view(data: Buffer) -> memoryview:
    """A flat byte view of ``data`` without copying where the layout allows it."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise InvalidInputError(f"tree nodes must be uint8, got {data.dtype}")
        return np.ascontiguousarray(data).reshape(-1).data
    view = memoryview(data)
    return view.cast("B") if view.ndim != 1 or view.format != "B" else view


def hash_pairs(view: memoryview) -> npt.NDArray[np.uint8]:
    """The reference :data:`PairHasher`: ``trim(SHA256(pair))`` of each 64-byte pair, hashlib.

    Works in batches so that only a batch of digests exists as Python objects at a time.
    """
    sha = hashlib.sha256
    n_pairs = len(view) // 64
    row = np.empty((n_pairs, NODE_BYTES), dtype=np.uint8)
    flat = row.reshape(-1)
    for first in range(0, n_pairs, _PAIRS_PER_BATCH):
        last = min(first + _PAIRS_PER_BATCH, n_pairs)
        starts = range(first * 64, last * 64, 64)
        digests = b"".join([sha(view[i : i + 64]).digest() for i in starts])
        flat[first * NODE_BYTES : last * NODE_BYTES] = np.frombuffer(digests, dtype=np.uint8)
    row[:, 31] &= 0x3F
    return row


def _check_nodes(nodes: npt.NDArray[np.uint8]) -> None:
    """Reject anything but a ``(n, 32)`` uint8 array."""
    if nodes.ndim != 2 or nodes.shape[1] != NODE_BYTES:
        raise InvalidInputError(f"tree nodes must have shape (n, 32), got {nodes.shape}")
    if nodes.dtype != np.uint8:
        raise InvalidInputError(f"tree nodes must be uint8, got {nodes.dtype}")


def _check_power_of_two(n_leaves: int) -> None:
    """Reject leaf counts that do not make a full binary tree."""
    if n_leaves < 1 or n_leaves & (n_leaves - 1):
        raise InvalidInputError(f"a binary tree needs a power-of-two leaf count, got {n_leaves}")


def sha256_hash_level(nodes: npt.NDArray[np.uint8],
                      pair_hasher: PairHasher = hash_pairs) -> npt.NDArray[np.uint8]:
    """Hash a ``(2n, 32)`` row into its ``(n, 32)`` parent row: ``trim(SHA256(l || r))``."""
    _check_nodes(nodes)
    if nodes.shape[0] == 0 or nodes.shape[0] % 2:
        raise InvalidInputError(f"a tree row needs an even, non-zero size, got {nodes.shape[0]}")
    return pair_hasher(as_bytes_view(nodes))


def sha256_tree_levels(leaves: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.uint8]]:
    """Every row of the tree over ``leaves`` (shape ``(2^k, 32)``): leaves first, root last."""
    _check_nodes(leaves)
    _check_power_of_two(leaves.shape[0])
    levels = [leaves]
    while levels[-1].shape[0] > 1:
        levels.append(sha256_hash_level(levels[-1]))
    return levels


def sha256_tree_root(leaves: Buffer) -> bytes:
    """The root of the tree over ``leaves`` (``2^k`` nodes, as an array or raw bytes)."""
    builder = Sha256TreeBuilder(len(as_bytes_view(leaves)) // NODE_BYTES)
    builder.update(leaves)
    return builder.root()


class Sha256TreeBuilder:
    """Computes a tree root from leaves fed in chunks of any whole number of nodes.

    Between chunks only the unpaired tail of each row is kept (at most one node per row),
    so memory is one chunk plus ``O(log n)`` nodes whatever the tree size.
    """

    def __init__(self, n_leaves: int, pair_hasher: PairHasher = hash_pairs) -> None:
        """Prepare for exactly ``n_leaves`` leaves (a power of two), hashing with
        ``pair_hasher``."""
        _check_power_of_two(n_leaves)
        self.n_leaves = n_leaves
        self._hash_pairs = pair_hasher
        self.fed = 0
        self._tails: list[bytes] = []

    def update(self, leaves: Buffer) -> None:
        """Feed the next leaves (a multiple of 32 bytes)."""
        view = as_bytes_view(leaves)
        if len(view) % NODE_BYTES:
            raise InvalidInputError(f"leaf data must be whole 32-byte nodes, got {len(view)} bytes")
        count = len(view) // NODE_BYTES
        if self.fed + count > self.n_leaves:
            raise InvalidInputError(f"more than the {self.n_leaves} leaves announced")
        self.fed += count
        row: bytes | memoryview = view
        level = 0
        while len(row):
            if level == len(self._tails):
                self._tails.append(b"")
            tail = self._tails[level]
            if tail:
                row = tail + bytes(row)
            usable = len(row) - len(row) % 64
            self._tails[level] = bytes(row[usable:])
            if not usable:
                break
            row = self._hash_pairs(memoryview(row)[:usable]).reshape(-1).data
            level += 1

    def root(self) -> bytes:
        """The root, once every announced leaf has been fed."""
        if self.fed != self.n_leaves:
            raise InvalidInputError(f"fed {self.fed} of {self.n_leaves} leaves")
        return self._tails[-1]


def sha256_root_of_stream(
    read_chunk: Callable[[int], Buffer], n_leaves: int, chunk_leaves: int = 1 << 16
) -> bytes:
    """Root of ``n_leaves`` leaves pulled from ``read_chunk(max_bytes)`` a chunk at a time.

    ``read_chunk`` must return whole nodes; an empty answer before the end is an error.
    """
    if chunk_leaves < 1:
        raise InvalidInputError(f"chunk_leaves must be positive, got {chunk_leaves}")
    builder = Sha256TreeBuilder(n_leaves)
    while builder.fed < n_leaves:
        want = min(chunk_leaves, n_leaves - builder.fed) * NODE_BYTES
        chunk = read_chunk(want)
        if not len(as_bytes_view(chunk)):
            raise InvalidInputError(f"stream ended after {builder.fed} of {n_leaves} leaves")
        builder.update(chunk)
    return builder.root()


def sha256_root_of_chunks(chunks: Iterable[Buffer], n_leaves: int) -> bytes:
    """Root of ``n_leaves`` leaves given as an iterable of node chunks."""
    builder = Sha256TreeBuilder(n_leaves)
    for chunk in chunks:
        builder.update(chunk)
    return builder.root()
