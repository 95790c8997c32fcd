"""SDR labeling, the work of PreCommit1 (docs/porep.md §6).

``label[ℓ][v] = trim(SHA256(prefix(ℓ, v) || 37 parent labels))`` where
``prefix = replica_id || u32_be(ℓ) || u64_be(v) || 20 zero bytes``; node 0 hashes only the
prefix; layer 1 cycles its 6 base parents, later layers cycle the 6 base parents (this
layer) and the 8 expander parents (previous layer): ``P×2 + P[0:9]``.

Labels are sequential (node ``v`` needs node ``v−1``), so the inner loop is one hashlib
call per node over a message joined from ready-made pieces: per chunk of nodes, numpy
builds the prefixes and gathers the expander parent labels (one ``take`` of whole labels);
per node, Python only slices the six base parent labels out of the layer buffer.

On disk, layer ``ℓ`` is ``sc-02-data-layer-<ℓ>.dat`` (``nodes·32`` bytes) in the sector's
cache directory.  A layer is written through a memory map of a ``.partial.dat`` file,
fsynced and renamed when complete, so an interrupted PreCommit1 resumes from the last
complete layer (:func:`completed_layers`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from sealagent.durable import fsync_directory
from sealagent.errors import CorruptDataError, InvalidInputError
from sealagent.proofs.cache_files import existing_dir, layer_path
from sealagent.proofs.graph import BASE_DEGREE, DEGREE, ParentsArray, StackedGraph
from sealagent.proofs.parent_cache import load_parents
from sealagent.vocab.registry import ApiVersion, RegisteredSealProof, resolve_proof

if TYPE_CHECKING:
    from sealagent.proofs.kernels import LayerLabeler

LABEL_BYTES: Final = 32
PREFIX_BYTES: Final = 64
"""``replica_id || u32_be(layer) || u64_be(node) || 20 zeros``: one SHA-256 block."""
PARENTS_HASHED: Final = 37
"""Parent labels in every label message (the parent list repeated cyclically)."""

_EXP_BYTES: Final = (DEGREE - BASE_DEGREE) * LABEL_BYTES
_EXP_TAIL_BYTES: Final = (PARENTS_HASHED - 2 * DEGREE - BASE_DEGREE) * LABEL_BYTES
"""The last ``37 − 28 − 6 = 3`` expander labels of a layer ≥ 2 message."""
_CHUNK_NODES: Final = 4096

ProgressCallback: TypeAlias = Callable[[int, int, int], None]
"""``progress(layer, nodes_done, nodes_total)``, called after every chunk of nodes."""
LabelsArray: TypeAlias = npt.NDArray[np.uint8]
"""One layer's labels as a ``(nodes, 32)`` uint8 array."""


def _check_replica_id(replica_id: bytes) -> bytes:
    """Reject anything but 32 bytes."""
    if not isinstance(replica_id, bytes | bytearray) or len(replica_id) != LABEL_BYTES:
        raise InvalidInputError("replica_id must be 32 bytes")
    return bytes(replica_id)


def _prefixes(replica_id: bytes, layer: int, start: int, stop: int) -> bytes:
    """The 64-byte message prefixes of nodes ``[start, stop)``, back to back."""
    block = np.zeros((stop - start, PREFIX_BYTES), dtype=np.uint8)
    block[:, :32] = np.frombuffer(replica_id, dtype=np.uint8)
    block[:, 32:36] = np.frombuffer(layer.to_bytes(4, "big"), dtype=np.uint8)
    block[:, 36:44] = np.arange(start, stop, dtype=">u8").view(np.uint8).reshape(-1, 8)
    return block.tobytes()


def node_zero_label(replica_id: bytes, layer: int) -> bytes:
    """``label[layer][0] = trim(SHA256(prefix(layer, 0)))``: it has no parents."""
    digest = bytearray(hashlib.sha256(_prefixes(_check_replica_id(replica_id), layer, 0, 1))
                       .digest())
    digest[31] &= 0x3F
    return bytes(digest)


def check_parents(parents: ParentsArray, start: int, nodes: int) -> None:
    """Rows ``start…`` of a graph of ``nodes`` nodes: base parents precede their node and
    every parent is a node (InvalidInputError otherwise)."""
    if parents.size and int(parents.max()) >= nodes:
        raise InvalidInputError(f"a parent index is outside the graph of {nodes} nodes")
    v = np.arange(start, start + parents.shape[0])
    if not np.all((parents[:, :BASE_DEGREE] < v[:, None]) | (v[:, None] == 0)):
        raise InvalidInputError("a base parent does not precede its node")


def _label_first_layer_chunk(
    mv: memoryview, base: list[list[int]], prefixes: bytes, first: int
) -> None:
    """Layer 1 labels of consecutive nodes from ``first``: ``prefix || P×6 || P[0]``.

    ``base`` holds each node's six base parent byte offsets into ``mv``.  This loop and
    :func:`_label_later_layer_chunk` are the PreCommit1 hot path: locals only, one join
    and one hashlib call per node.
    """
    sha, join = hashlib.sha256, b"".join
    o, p = first * LABEL_BYTES, 0
    for a, b, c, d, e, f in base:
        x = mv[a : a + 32]
        ps = join((x, mv[b : b + 32], mv[c : c + 32], mv[d : d + 32], mv[e : e + 32],
                   mv[f : f + 32]))
        digest = sha(join((prefixes[p : p + 64], ps, ps, ps, ps, ps, ps, x))).digest()
        mv[o : o + 32] = digest
        mv[o + 31] = digest[31] & 0x3F
        o += 32
        p += 64


def _label_later_layer_chunk(
    mv: memoryview, base: list[list[int]], prefixes: bytes, exp: bytes, first: int
) -> None:
    """Layer ≥ 2 labels from ``first``: ``prefix || B || E || B || E || B || E[0:3]``.

    ``B`` is the six base parent labels (this layer, read from ``mv``), ``E`` the eight
    expander parent labels (previous layer, gathered beforehand into ``exp``).
    """
    sha, join = hashlib.sha256, b"".join
    o, p, q = first * LABEL_BYTES, 0, 0
    for a, b, c, d, e, f in base:
        ps = join((mv[a : a + 32], mv[b : b + 32], mv[c : c + 32], mv[d : d + 32],
                   mv[e : e + 32], mv[f : f + 32]))
        ex = exp[q : q + _EXP_BYTES]
        digest = sha(join((prefixes[p : p + 64], ps, ex, ps, ex, ps,
                           ex[:_EXP_TAIL_BYTES]))).digest()
        mv[o : o + 32] = digest
        mv[o + 31] = digest[31] & 0x3F
        o += 32
        p += 64
        q += _EXP_BYTES


def label_layer(
    replica_id: bytes,
    layer: int,
    parents: ParentsArray,
    out: memoryview,
    prev: LabelsArray | None,
    progress: ProgressCallback | None = None,
) -> None:
    """Compute every label of ``layer`` into ``out`` (a writable ``nodes·32``-byte buffer).

    The reference :class:`~sealagent.proofs.kernels.LayerLabeler`.  ``parents`` is the
    graph (``(nodes, 14)`` uint32); ``prev`` holds the labels of layer ``layer − 1`` as
    ``(nodes, 32)`` uint8 and must be given exactly when ``layer > 1``.  Work goes chunk
    by chunk: numpy prepares the prefixes, the base parent offsets and the gathered
    expander labels of a chunk, then a tight loop hashes its nodes in order.
    """
    rid, mv = check_layer_arguments(replica_id, layer, parents, out, prev)
    nodes = parents.shape[0]
    # One 32-byte void item per label: ``take`` then copies whole labels, the fastest gather.
    prev_rows = None if prev is None else np.ascontiguousarray(prev).reshape(-1).view("V32")
    mv[0:LABEL_BYTES] = node_zero_label(rid, layer)
    for start in range(0, nodes, _CHUNK_NODES):
        stop = min(start + _CHUNK_NODES, nodes)
        chunk = np.asarray(parents[start:stop])
        check_parents(chunk, start, nodes)
        first = max(start, 1)
        rows = chunk[first - start :]
        base = (rows[:, :BASE_DEGREE].astype(np.int64) * LABEL_BYTES).tolist()
        prefixes = _prefixes(rid, layer, first, stop)
        if prev_rows is None:
            _label_first_layer_chunk(mv, base, prefixes, first)
        else:
            exp = prev_rows.take(rows[:, BASE_DEGREE:]).tobytes()
            _label_later_layer_chunk(mv, base, prefixes, exp, first)
        if progress is not None:
            progress(layer, stop, nodes)


def check_layer_arguments(
    replica_id: bytes, layer: int, parents: ParentsArray, out: memoryview,
    prev: LabelsArray | None,
) -> tuple[bytes, memoryview]:
    """Validate a :class:`~sealagent.proofs.kernels.LayerLabeler` call's arguments.

    Returns the replica id as ``bytes`` and ``out`` as a flat writable byte view; raises
    InvalidInputError for a bad replica id, layer number, graph shape, output buffer or
    previous layer.  The parents' values are checked chunk by chunk with
    :func:`check_parents`.
    """
    rid = _check_replica_id(replica_id)
    if not 1 <= layer < 1 << 32:
        raise InvalidInputError(f"layers are numbered from 1, got {layer}")
    if parents.ndim != 2 or parents.shape[1] != DEGREE or parents.shape[0] < 1:
        raise InvalidInputError(f"parents must have shape (nodes, {DEGREE}), got {parents.shape}")
    nodes = parents.shape[0]
    if not out.c_contiguous:
        raise InvalidInputError("the output buffer must be contiguous")
    mv = out.cast("B")
    if len(mv) != nodes * LABEL_BYTES or mv.readonly:
        raise InvalidInputError(f"the output buffer must be {nodes * LABEL_BYTES} writable bytes")
    if (layer > 1) != (prev is not None):
        raise InvalidInputError("the previous layer is needed exactly for layers after the first")
    if prev is not None and prev.shape != (nodes, LABEL_BYTES):
        raise InvalidInputError(f"the previous layer must have shape ({nodes}, {LABEL_BYTES})")
    return rid, mv


def generate_labels(
    replica_id: bytes, porep_id: bytes, nodes: int, layers: int, api_version: ApiVersion | str
) -> list[bytes]:
    """All labels of a small graph, in memory: one ``nodes·32``-byte string per layer.

    The graph is computed directly from ``porep_id`` and ``api_version`` (no parent
    cache file), as rust-fil-proofs' labeling tests do.  ``api_version`` is an
    :class:`ApiVersion` or its text (``"1.1.0"``).
    """
    if layers < 1:
        raise InvalidInputError(f"need at least one layer, got {layers}")
    parents = StackedGraph(nodes, porep_id, api_version).all_parents()
    result: list[bytes] = []
    prev: LabelsArray | None = None
    for layer in range(1, layers + 1):
        buf = bytearray(nodes * LABEL_BYTES)
        label_layer(replica_id, layer, parents, memoryview(buf), prev)
        result.append(bytes(buf))
        prev = np.frombuffer(result[-1], dtype=np.uint8).reshape(nodes, LABEL_BYTES)
    return result


def _partial_path(cache_dir: Path, layer: int) -> Path:
    """Where a layer is written until it is complete (still matched by cache cleanup)."""
    final = layer_path(cache_dir, layer)
    return final.with_name(final.name.removesuffix(".dat") + ".partial.dat")


def _layer_is_complete(path: Path, nodes: int, replica_id: bytes | None, layer: int) -> bool:
    """The file has the full size and, when ``replica_id`` is given, its node 0 label."""
    try:
        if path.stat().st_size != nodes * LABEL_BYTES:
            return False
        if replica_id is None:
            return True
        with path.open("rb") as f:
            return f.read(LABEL_BYTES) == node_zero_label(replica_id, layer)
    except FileNotFoundError:
        return False


def _graph_shape(
    graph: RegisteredSealProof | str | int | ParentsArray, layers: int | None
) -> tuple[int, int]:
    """``(nodes, layers)`` of a registered proof or of a parents array plus a layer count."""
    if isinstance(graph, np.ndarray):
        if graph.ndim != 2 or graph.shape[1] != DEGREE or graph.dtype != np.uint32:
            raise InvalidInputError(f"parents must be a (nodes, {DEGREE}) uint32 array")
        if layers is None:
            raise InvalidInputError("layers is required with a parents array")
        if layers < 1:
            raise InvalidInputError(f"need at least one layer, got {layers}")
        return graph.shape[0], layers
    proof = resolve_proof(graph)
    if layers not in (None, proof.layers):
        raise InvalidInputError(f"{proof.name} has {proof.layers} layers, not {layers}")
    return proof.nodes, proof.layers


def completed_layers(
    cache_dir: str | os.PathLike[str],
    graph: RegisteredSealProof | str | int | ParentsArray,
    replica_id: bytes | None = None,
    *,
    layers: int | None = None,
) -> int:
    """How many layers, counting from layer 1, are complete in ``cache_dir``.

    ``graph`` and ``layers`` are as for :func:`create_label_layers`.  A layer counts
    when its file has exactly ``nodes·32`` bytes and, if ``replica_id`` is given, starts
    with that replica's node 0 label (so the layers of another ticket do not count).
    """
    nodes, total = _graph_shape(graph, layers)
    rid = None if replica_id is None else _check_replica_id(replica_id)
    return _completed(Path(cache_dir), nodes, total, rid)


def _completed(cache_dir: Path, nodes: int, layers: int, replica_id: bytes | None) -> int:
    """:func:`completed_layers` for an explicit graph size."""
    done = 0
    while done < layers and _layer_is_complete(
        layer_path(cache_dir, done + 1), nodes, replica_id, done + 1
    ):
        done += 1
    return done


def _open_layer(path: Path, nodes: int) -> LabelsArray:
    """A complete layer file as a read-only ``(nodes, 32)`` memory map."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CorruptDataError(f"label layer {path} is missing") from None
    if size != nodes * LABEL_BYTES:
        raise CorruptDataError(
            f"label layer {path} has {size} bytes, expected {nodes * LABEL_BYTES}"
        )
    layer: LabelsArray = np.memmap(path, dtype=np.uint8, mode="r", shape=(nodes, LABEL_BYTES))
    return layer


def _write_layer(
    path: Path,
    replica_id: bytes,
    layer: int,
    parents: ParentsArray,
    prev: LabelsArray | None,
    progress: ProgressCallback | None,
    labeler: LayerLabeler,
) -> None:
    """Label one layer into a memory-mapped partial file, then fsync and rename it."""
    partial = _partial_path(path.parent, layer)
    out = np.memmap(partial, dtype=np.uint8, mode="w+", shape=(parents.shape[0] * LABEL_BYTES,))
    labeler(replica_id, layer, parents, out.data, prev, progress)
    out.flush()
    del out
    with partial.open("rb+") as f:
        os.fsync(f.fileno())
    partial.replace(path)
    fsync_directory(path.parent)


def create_label_layers(
    graph: RegisteredSealProof | str | int | ParentsArray,
    replica_id: bytes,
    cache_dir: str | os.PathLike[str],
    *,
    layers: int | None = None,
    start_layer: int = 1,
    progress: ProgressCallback | None = None,
    labeler: LayerLabeler = label_layer,
) -> list[Path]:
    """Label layers ``start_layer … L`` into ``cache_dir``; returns the paths of all L layers.

    ``graph`` is a registered proof (its parents come from the parent cache file and
    ``layers`` defaults to the proof's) or a ``(nodes, 14)`` parents array (then
    ``layers`` is required).  With ``start_layer > 1`` the layers before it must be
    complete on disk for this replica; layer ``start_layer − 1`` is read back through a
    memory map.  ``start_layer = L + 1`` does nothing, so resuming is always
    ``start_layer=completed_layers(cache_dir, graph, replica_id) + 1``.  ``labeler``
    computes each layer (a :class:`~sealagent.proofs.kernels.LayerLabeler`).
    """
    rid = _check_replica_id(replica_id)
    nodes, layers = _graph_shape(graph, layers)
    if not 1 <= start_layer <= layers + 1:
        raise InvalidInputError(f"start_layer {start_layer} is not in 1..{layers + 1}")
    parents = graph if isinstance(graph, np.ndarray) else load_parents(graph)
    cache = existing_dir(cache_dir, "cache directory")
    if _completed(cache, nodes, start_layer - 1, rid) < start_layer - 1:
        raise CorruptDataError(
            f"cannot start at layer {start_layer}: the layers before it in {cache} are not "
            "complete for this replica"
        )
    prev = _open_layer(layer_path(cache, start_layer - 1), nodes) if start_layer > 1 else None
    for layer in range(start_layer, layers + 1):
        path = layer_path(cache, layer)
        _write_layer(path, rid, layer, parents, prev, progress, labeler)
        prev = _open_layer(path, nodes)
    return [layer_path(cache, layer) for layer in range(1, layers + 1)]
