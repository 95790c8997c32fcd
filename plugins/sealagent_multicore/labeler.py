"""The SDR labeler compiled with numba, hashing with OpenSSL's SHA-256.

The compiled loop does what the reference does per node (``sealagent.proofs.labels``):
it writes the node number into the 64-byte prefix, gathers the 37 parent labels (base
parents from the layer being written, expander parents from the previous one) behind it,
and hashes the 1,248 bytes with ``SHA256_Init/Update/Final`` called directly from compiled
code (bound in :mod:`sealagent_multicore.sha256`).

The loop releases the GIL: two layers of different sectors label on two threads at once.
"""

from __future__ import annotations

from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
from numba import njit

from sealagent.proofs.graph import BASE_DEGREE, DEGREE, ParentsArray
from sealagent.proofs.labels import (
    LABEL_BYTES,
    PARENTS_HASHED,
    PREFIX_BYTES,
    LabelsArray,
    ProgressCallback,
    check_layer_arguments,
    check_parents,
)
from sealagent_multicore.sha256 import SHA256_CTX_BYTES, sha256_final, sha256_init, sha256_update

MESSAGE_BYTES: Final = PREFIX_BYTES + PARENTS_HASHED * LABEL_BYTES
"""1,248: the prefix and 37 parent labels."""
CHUNK_NODES: Final = 1 << 16
"""Nodes labelled between progress reports and parent checks."""


@njit(nogil=True, cache=True)
def _label_range(replica_id: npt.NDArray[np.uint8], layer: int, parents: ParentsArray,
                 out: npt.NDArray[np.uint8], prev: npt.NDArray[np.uint8], start: int,
                 stop: int) -> None:
    """Label nodes ``[start, stop)`` of ``layer`` into ``out`` (flat ``nodes·32`` bytes).

    ``prev`` is the previous layer, flat (empty for layer 1).  Parents must be checked.
    """
    message = np.zeros(MESSAGE_BYTES, dtype=np.uint8)
    context = np.zeros(SHA256_CTX_BYTES, dtype=np.uint8)
    message[:32] = replica_id
    for i in range(4):
        message[32 + i] = (layer >> (8 * (3 - i))) & 0xFF
    unique = BASE_DEGREE if prev.size == 0 else DEGREE
    words = message.view(np.uint64)
    this_layer = out.view(np.uint64)
    prev_layer = prev.view(np.uint64)
    for v in range(start, stop):
        for i in range(8):
            message[36 + i] = (v >> (8 * (7 - i))) & 0xFF
        length = PREFIX_BYTES
        if v > 0:
            for k in range(PARENTS_HASHED):
                slot = k % unique
                parent = np.int64(parents[v, slot]) * 4
                at = (PREFIX_BYTES + k * LABEL_BYTES) // 8
                if slot < BASE_DEGREE:
                    for w in range(4):
                        words[at + w] = this_layer[parent + w]
                else:
                    for w in range(4):
                        words[at + w] = prev_layer[parent + w]
            length = MESSAGE_BYTES
        digest = out.ctypes.data + v * LABEL_BYTES
        sha256_init(context.ctypes.data)
        sha256_update(context.ctypes.data, message.ctypes.data, length)
        sha256_final(digest, context.ctypes.data)
        out[v * LABEL_BYTES + 31] &= 0x3F


_ScalarT = TypeVar("_ScalarT", bound=np.generic)


def _read_only(array: npt.NDArray[_ScalarT]) -> npt.NDArray[_ScalarT]:
    """A read-only view of ``array``."""
    view = array.view()
    view.flags.writeable = False
    return view


def label_layer(replica_id: bytes, layer: int, parents: ParentsArray, out: memoryview,
                prev: LabelsArray | None, progress: ProgressCallback | None = None) -> None:
    """The compiled :class:`~sealagent.proofs.kernels.LayerLabeler` (same checks, same labels)."""
    rid, mv = check_layer_arguments(replica_id, layer, parents, out, prev)
    nodes = parents.shape[0]
    flat_out = np.frombuffer(mv, dtype=np.uint8)
    # Inputs are passed as read-only views: one compiled signature whatever the callers hold.
    flat_prev = _read_only(np.empty(0, dtype=np.uint8) if prev is None
                           else np.ascontiguousarray(prev).reshape(-1))
    graph = _read_only(np.ascontiguousarray(parents))
    replica = _read_only(np.frombuffer(rid, dtype=np.uint8))
    for start in range(0, nodes, CHUNK_NODES):
        stop = min(start + CHUNK_NODES, nodes)
        check_parents(graph[start:stop], start, nodes)
        _label_range(replica, layer, graph, flat_out, flat_prev, start, stop)
        if progress is not None:
            progress(layer, stop, nodes)


def warm() -> None:
    """Compile (or load) the labeling loop."""
    graph = np.zeros((1, DEGREE), dtype=np.uint32)
    label_layer(bytes(32), 1, graph, memoryview(bytearray(LABEL_BYTES)), None)
