"""Replica encoding: ``replica = key + data (mod r)`` and its inverse, on whole node arrays.

rust-fil-proofs ``encode.rs``: the key of node ``j`` is its last-layer label, the data is
the staged (Fr32-padded) node, both read as field elements.  Here a row of nodes is a
``(n, 32)`` uint8 array viewed as four little-endian 64-bit limbs, so a chunk of a sector
is encoded with a few numpy operations instead of one Python integer per node.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from sealagent.errors import CorruptDataError, InvalidInputError
from sealagent.proofs.field import FR_BYTES, R

Nodes = npt.NDArray[np.uint8]
_Limbs = npt.NDArray[np.uint64]

_R_LIMBS: Final = np.array([(R >> (64 * i)) & (2**64 - 1) for i in range(4)], dtype=np.uint64)


def _limbs(nodes: Nodes, name: str) -> _Limbs:
    """View ``(n, 32)`` uint8 nodes as ``(n, 4)`` little-endian uint64 limbs."""
    if nodes.dtype != np.uint8 or nodes.ndim != 2 or nodes.shape[1] != FR_BYTES:
        raise InvalidInputError(f"{name} must be a (n, 32) uint8 array, got {nodes.shape}")
    return np.ascontiguousarray(nodes).view("<u8").astype(np.uint64)


def _not_below_r(x: _Limbs) -> npt.NDArray[np.bool_]:
    """Rows whose 256-bit value is ``≥ r`` (compared limb by limb from the top)."""
    ge = np.ones(x.shape[0], dtype=bool)
    for i in range(4):
        ge = np.where(x[:, i] != _R_LIMBS[i], x[:, i] > _R_LIMBS[i], ge)
    return ge


def _add(a: _Limbs, b: _Limbs) -> _Limbs:
    """``a + b mod 2^256`` over four limbs."""
    out = np.empty_like(a)
    carry = np.zeros(a.shape[0], dtype=np.uint64)
    for i in range(4):
        s = a[:, i] + b[:, i]
        c1 = s < a[:, i]
        s2 = s + carry
        c2 = s2 < s
        out[:, i] = s2
        carry = (c1 | c2).astype(np.uint64)
    return out


def _sub(a: _Limbs, b: _Limbs) -> tuple[_Limbs, npt.NDArray[np.bool_]]:
    """``a − b mod 2^256`` over four limbs, and the rows where it borrowed (``a < b``)."""
    out = np.empty_like(a)
    borrow = np.zeros(a.shape[0], dtype=np.uint64)
    for i in range(4):
        d = a[:, i] - b[:, i]
        b1 = a[:, i] < b[:, i]
        d2 = d - borrow
        b2 = d < borrow
        out[:, i] = d2
        borrow = (b1 | b2).astype(np.uint64)
    return out, borrow.astype(bool)


def _to_nodes(x: _Limbs) -> Nodes:
    """Back from limbs to ``(n, 32)`` uint8 nodes."""
    return x.astype("<u8").view(np.uint8).reshape(-1, FR_BYTES)


def _checked(nodes: Nodes, name: str) -> _Limbs:
    """Limbs of ``nodes``, refusing values that are not canonical field elements."""
    limbs = _limbs(nodes, name)
    bad = np.flatnonzero(_not_below_r(limbs))
    if bad.size:
        raise CorruptDataError(f"{name} node {int(bad[0])} is not a field element (≥ r)")
    return limbs


def _same_shape(a: Nodes, b: Nodes) -> None:
    """Keys and values must pair up node by node."""
    if a.shape != b.shape:
        raise InvalidInputError(f"node arrays differ in shape: {a.shape} vs {b.shape}")


def encode_nodes(key: Nodes, data: Nodes) -> Nodes:
    """``(key + data) mod r`` node by node: the replica nodes of a chunk."""
    _same_shape(key, data)
    total = _add(_checked(key, "key"), _checked(data, "data"))
    reduced, borrowed = _sub(total, np.broadcast_to(_R_LIMBS, total.shape))
    return _to_nodes(np.where(borrowed[:, None], total, reduced))


def decode_nodes(key: Nodes, replica: Nodes) -> Nodes:
    """``(replica − key) mod r`` node by node: the original data nodes of a chunk."""
    _same_shape(key, replica)
    diff, borrowed = _sub(_checked(replica, "replica"), _checked(key, "key"))
    wrapped = _add(diff, np.broadcast_to(_R_LIMBS, diff.shape))
    return _to_nodes(np.where(borrowed[:, None], wrapped, diff))
