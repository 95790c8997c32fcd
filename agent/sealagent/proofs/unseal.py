"""Unsealing: recover piece bytes from a sealed replica (filecoin-proofs ``unseal_range``).

``data[j] = replica[j] − key[j] (mod r)`` with ``key`` the last label layer.  The key is
read from the cache when its layers are still there and belong to this replica;
otherwise every layer is recomputed from the parent cache into two scratch files in the
cache directory (the previous layer and the current one), removed afterwards.  Only the
padded blocks covering the requested range are decoded, a chunk at a time.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from sealagent.errors import InvalidInputError
from sealagent.proofs.cache_files import existing_dir, layer_id, layer_path, sector_file
from sealagent.proofs.encoding import decode_nodes
from sealagent.proofs.fr32 import iter_unpadded
from sealagent.proofs.kernels import REFERENCE_KERNELS, Progress, SealKernels
from sealagent.proofs.labels import completed_layers
from sealagent.proofs.merkle import NODE_BYTES
from sealagent.proofs.parent_cache import load_parents
from sealagent.proofs.seal import Nodes, generate_replica_id, map_nodes
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class _DecodedSector(io.RawIOBase):
    """A read-only, seekable byte view of the decoded (padded) sector, decoded on read."""

    def __init__(self, key: Nodes, replica: Nodes) -> None:
        super().__init__()
        self._key, self._replica, self._pos = key, replica, 0
        self._size = int(replica.shape[0]) * NODE_BYTES

    def readable(self) -> bool:
        """It is."""
        return True

    def seekable(self) -> bool:
        """It is."""
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` from the start, the position or the end."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Decode the nodes overlapping ``[pos, pos + len(buffer))`` and copy the bytes."""
        out = memoryview(buffer).cast("B")
        end = min(self._pos + len(out), self._size)
        if end <= self._pos:
            return 0
        first, last = self._pos // NODE_BYTES, -(-end // NODE_BYTES)
        data = decode_nodes(np.asarray(self._key[first:last]),
                            np.asarray(self._replica[first:last])).tobytes()
        skip = self._pos - first * NODE_BYTES
        n = end - self._pos
        out[:n] = data[skip : skip + n]
        self._pos = end
        return n


def _recomputed_key(proof: RegisteredSealProof, replica_id: bytes, scratch: Path,
                    kernels: SealKernels, progress: Progress | None) -> Nodes:
    """Label every layer from the parent cache; return the last one (a scratch memmap)."""
    parents = load_parents(proof, builder=kernels.parents_builder, progress=progress)
    layer_progress = None if progress is None else (
        lambda layer, n, total: progress(layer_id(layer), n, total))
    prev: Nodes | None = None
    for layer in range(1, proof.layers + 1):
        buf = np.memmap(scratch / f"layer-{layer % 2}.dat", dtype=np.uint8, mode="w+",
                        shape=(proof.nodes * NODE_BYTES,))
        kernels.labeler(replica_id, layer, parents, buf.data, prev, layer_progress)
        prev = buf.reshape(proof.nodes, NODE_BYTES)
    assert prev is not None
    return prev


def unseal_range(
    registered_proof: RegisteredSealProof | str | int,
    cache_dir: str | os.PathLike[str],
    sealed_path: str | os.PathLike[str],
    unsealed_output: str | os.PathLike[str] | BinaryIO,
    *,
    prover_id: bytes,
    sector_id: int,
    comm_d: bytes,
    ticket: bytes,
    offset: int,
    num_bytes: int,
    kernels: SealKernels = REFERENCE_KERNELS,
    progress: Progress | None = None,
) -> int:
    """Write the original bytes ``[offset, offset + num_bytes)`` (unpadded) of the sector.

    ``unsealed_output`` is a path (created or truncated) or a writable binary file.
    Returns the number of bytes written (``num_bytes``).  When the cache no longer holds
    the key, ``kernels.labeler`` computes it again (:mod:`sealagent.proofs.kernels`),
    reporting each layer to ``progress`` (stages ``parents`` and ``layer-<l>``).
    """
    proof = resolve_proof(registered_proof)
    replica_id = generate_replica_id(prover_id, sector_id, ticket, comm_d, proof.porep_id)
    for name, value in (("offset", offset), ("num_bytes", num_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{name} must be a non-negative integer, got {value!r}")
    if offset + num_bytes > proof.shape.unpadded_size:
        raise InvalidInputError(f"range {offset}+{num_bytes} is beyond the sector's "
                                f"{proof.shape.unpadded_size} bytes")
    cache = existing_dir(cache_dir, "cache directory")
    sealed = sector_file(sealed_path, proof.sector_size, "sealed file")
    with contextlib.ExitStack() as stack:
        if completed_layers(cache, proof, replica_id) == proof.layers:
            key: Nodes = map_nodes(layer_path(cache, proof.layers), proof.nodes)
        else:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="unseal-",
                                                                      dir=cache))
            key = _recomputed_key(proof, replica_id, Path(scratch), kernels, progress)
        decoded = io.BufferedReader(_DecodedSector(key, map_nodes(sealed, proof.nodes)))
        if isinstance(unsealed_output, str | os.PathLike):
            output: BinaryIO = stack.enter_context(open(unsealed_output, "wb"))
        else:
            output = unsealed_output
        written = 0
        for chunk in iter_unpadded(decoded, offset, num_bytes):
            output.write(chunk)
            written += len(chunk)
        output.flush()
    return written
