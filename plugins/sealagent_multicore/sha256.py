"""OpenSSL's SHA-256 called from compiled code, and SHA256-trunc254 trees built with it.

``SHA256_Init/Update/Final`` are bound by symbol name (numba's external functions,
resolved in the libcrypto that :func:`~sealagent_multicore.environment.find_libcrypto`
loaded with global symbols), so code calling them is cached on disk like any other.  The
labeler (:mod:`sealagent_multicore.labeler`) hashes its 1,248-byte messages with them;
:class:`CompiledSha256` hashes the 64-byte pairs of binary trees (CommP in AddPiece,
tree_d in PreCommit1): ``trim(SHA256(left || right))``, byte for byte
:func:`sealagent.proofs.sha_tree.sha256_hash_level`.
"""

from __future__ import annotations

from typing import Any, Final

import llvmlite.binding
import numpy as np
import numpy.typing as npt
from numba import njit, types

from sealagent.errors import InvalidInputError
from sealagent.proofs.merkle import TreeHasher, sha256_tree_hasher
from sealagent.proofs.sha_tree import NODE_BYTES, Buffer, as_bytes_view
from sealagent_multicore.environment import find_libcrypto
from sealagent_multicore.threads import ThreadShares

llvmlite.binding.load_library_permanently(find_libcrypto())

# Pointers are passed as ``uintp`` (``ndarray.ctypes.data``), which the ABI passes alike.
sha256_init: Any = types.ExternalFunction("SHA256_Init", types.intc(types.uintp))
sha256_update: Any = types.ExternalFunction(
    "SHA256_Update", types.intc(types.uintp, types.uintp, types.uintp))
sha256_final: Any = types.ExternalFunction("SHA256_Final",
                                           types.intc(types.uintp, types.uintp))

SHA256_CTX_BYTES: Final = 128
"""Room for OpenSSL's ``SHA256_CTX`` (112 bytes)."""
PAIR_BYTES: Final = 2 * NODE_BYTES
MIN_SHARE: Final = 1 << 14
"""Fewest pairs worth a thread of their own."""


@njit(nogil=True, cache=True)
def _hash_pairs(pairs: npt.NDArray[np.uint8], out: npt.NDArray[np.uint8], first: int,
                last: int) -> None:
    """``out[i] = trim(SHA256(pairs[64·i : 64·i + 64]))`` for ``i`` in ``[first, last)``."""
    context = np.zeros(SHA256_CTX_BYTES, dtype=np.uint8)
    for i in range(first, last):
        sha256_init(context.ctypes.data)
        sha256_update(context.ctypes.data, pairs.ctypes.data + i * PAIR_BYTES, PAIR_BYTES)
        sha256_final(out.ctypes.data + i * NODE_BYTES, context.ctypes.data)
        out[i * NODE_BYTES + NODE_BYTES - 1] &= 0x3F


class CompiledSha256:
    """SHA256-trunc254 pair hashing on at most ``threads`` threads."""

    def __init__(self, threads: int) -> None:
        """Hash on ``threads`` threads (the calling one included)."""
        self._shares = ThreadShares(threads, "sealagent-sha256")

    def hash_pairs(self, data: Buffer) -> npt.NDArray[np.uint8]:
        """The ``(n, 32)`` parents of the ``n`` 64-byte pairs of ``data``.

        :raises InvalidInputError: ``data`` is not whole pairs.
        """
        view = as_bytes_view(data)
        if len(view) % PAIR_BYTES:
            raise InvalidInputError(f"pair data must be whole 64-byte pairs, got {len(view)} "
                                    "bytes")
        pairs = np.frombuffer(view, dtype=np.uint8).view()
        pairs.flags.writeable = False  # one compiled signature whatever the caller holds
        count = len(view) // PAIR_BYTES
        out = np.empty((count, NODE_BYTES), dtype=np.uint8)
        flat = out.reshape(-1)
        self._shares.spread(count, MIN_SHARE,
                            lambda lo, hi: _hash_pairs(pairs, flat, lo, hi))
        return out

    def tree_hasher(self) -> TreeHasher:
        """A SHA256-trunc254 :class:`TreeHasher` (tree_d) that hashes with this."""
        return sha256_tree_hasher(self.hash_pairs)


def warm() -> None:
    """Compile (or load) the pair hashing loop."""
    CompiledSha256(1).hash_pairs(bytes(PAIR_BYTES))
