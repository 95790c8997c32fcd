"""PreCommit2 with the column hashes, tree_c and tree_r_last built by a chunk engine.

The files, their checks and the commitments are the reference's
(:func:`sealagent.proofs.seal_pre_commit_phase2`): tree_c over the column hashes, the
replica ``key + data (mod r)`` in the sealed file, tree_r_last over it, ``p_aux`` and
``t_aux``.  What differs is who hashes: the engine gets the label layers, the last layer
and the unsealed data chunk by chunk and returns the leaves and rows of each chunk's
subtree.  With ``trees=True`` the replica is encoded in the same kernel that hashes
tree_r_last's first row.

``columns`` / ``trees`` (``FIL_PROOFS_USE_GPU_COLUMN_BUILDER`` /
``FIL_PROOFS_USE_GPU_TREE_BUILDER``) move either part back to the reference code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from sealagent.errors import CorruptDataError, InvalidInputError, PluginError
from sealagent.proofs.cache_files import (
    PersistentAux,
    TemporaryAux,
    existing_dir,
    sector_file,
)
from sealagent.proofs.encoding import encode_nodes
from sealagent.proofs.merkle import (
    NODE_BYTES,
    TreeLayout,
    tree_c_layout,
    tree_d_layout,
    tree_r_last_layout,
)
from sealagent.proofs.poseidon import poseidon_hash, poseidon_hash_level
from sealagent.proofs.seal import (
    CHUNK_NODES,
    PreCommit1Output,
    Progress,
    SealPreCommitOutput,
    _config_of,
    label_configs,
    map_nodes,
    open_layers,
)
from sealagent_gpu_cupy.chunks import ChunkJob, Engine, JobKind, Nodes
from sealagent_gpu_cupy.trees import Progress as TreeProgress
from sealagent_gpu_cupy.trees import build_tree

DEFAULT_CHUNK_NODES: Final = 1 << 24
"""Leaves per chunk (8^8: a 512 MiB sector in one chunk; 512 MiB per label layer)."""


@dataclass(frozen=True)
class Placement:
    """Which parts run on the engine (the rest runs on the reference code)."""

    columns: bool = True
    trees: bool = True

    @property
    def any(self) -> bool:
        """Whether the engine has anything to do."""
        return self.columns or self.trees


def _columns_job(layers: Sequence[Nodes], arity: int, on_engine: bool, start: int,
                 stop: int, levels: int, keep_from: int) -> ChunkJob:
    """tree_c's chunk: column hashes on the engine, or by the reference then the rows."""
    parts = tuple(np.asarray(layer[start:stop]) for layer in layers)
    if on_engine:
        return ChunkJob(JobKind.COLUMNS, parts, arity, levels, keep_from)
    columns = poseidon_hash_level(np.stack(parts, axis=1).reshape(-1, NODE_BYTES), len(parts))
    return ChunkJob(JobKind.TREE, (columns,), arity, levels, keep_from)


def _hash_columns(layers: Sequence[Nodes], out: Nodes, arity: int, engine: Engine,
                  chunk_nodes: int, progress: Progress | None) -> None:
    """Column hashes of every node into ``out`` on the engine (no tree rows)."""
    nodes = out.shape[0]
    for start in range(0, nodes, chunk_nodes):
        stop = min(start + chunk_nodes, nodes)
        parts = tuple(np.asarray(layer[start:stop]) for layer in layers)
        done = engine.submit(ChunkJob(JobKind.COLUMNS, parts, arity, 0)).result()
        if done.leaves is None:
            raise PluginError("the engine returned no column hashes")
        out[start:stop] = done.leaves
        if progress is not None:
            progress("tree-c", stop, nodes)


def _reference_trees(layers: Sequence[Nodes], cache: Path, tree_c: TreeLayout,
                     tree_r_last: TreeLayout, data: Nodes, replica: Nodes, engine: Engine,
                     chunk_nodes: int, progress: Progress | None) -> tuple[bytes, bytes]:
    """tree_c and tree_r_last by the reference, over columns hashed on the engine."""
    columns_path = cache / "sc-02-data-tree-c-columns.tmp"
    try:
        columns = np.memmap(columns_path, dtype=np.uint8, mode="w+",
                            shape=(replica.shape[0], NODE_BYTES))
        _hash_columns(layers, columns, tree_c.shape.base, engine, chunk_nodes, progress)
        comm_c = tree_c.build(columns)
        del columns
    finally:
        columns_path.unlink(missing_ok=True)
    key = layers[-1]
    for start in range(0, replica.shape[0], CHUNK_NODES):
        stop = min(start + CHUNK_NODES, replica.shape[0])
        replica[start:stop] = encode_nodes(np.asarray(key[start:stop]),
                                           np.asarray(data[start:stop]))
    return comm_c, tree_r_last.build(replica)


def engine_pre_commit_phase2(
    pc1_output: PreCommit1Output,
    cache_dir: str | os.PathLike[str],
    sealed_path: str | os.PathLike[str],
    engine: Engine,
    *,
    placement: Placement = Placement(),
    chunk_nodes: int = DEFAULT_CHUNK_NODES,
    progress: Progress | None = None,
) -> SealPreCommitOutput:
    """PreCommit2 on ``engine``; byte for byte the reference's files and commitments.

    :raises InvalidInputError: bad arguments, or a placement with nothing on the engine.
    :raises CorruptDataError: missing or damaged layers or tree_d, or nodes ≥ r.
    """
    if not isinstance(pc1_output, PreCommit1Output):
        raise InvalidInputError("pc1_output must be a PreCommit1Output")
    if not placement.any:
        raise InvalidInputError("neither the columns nor the trees are placed on the engine")
    proof = pc1_output.registered_proof
    cache = existing_dir(cache_dir, "cache directory")
    sealed = sector_file(sealed_path, proof.sector_size, "sealed file")
    layers = open_layers(cache, proof, pc1_output.replica_id)
    tree_d = tree_d_layout(cache, proof.sector_size)
    if tree_d.root() != pc1_output.comm_d:
        raise CorruptDataError(f"tree_d in {cache} does not have PC1's comm_d as its root")
    tree_c = tree_c_layout(cache, proof.shape)
    tree_r_last = tree_r_last_layout(cache, proof.shape)
    data = map_nodes(tree_d.paths()[0], proof.nodes)
    replica = map_nodes(sealed, proof.nodes, writable=True)
    if placement.trees:
        arity = proof.shape.base_arity

        def columns_job(start: int, stop: int, levels: int, keep_from: int) -> ChunkJob:
            return _columns_job(layers, arity, placement.columns, start, stop, levels,
                                keep_from)

        def encode_job(start: int, stop: int, levels: int, keep_from: int) -> ChunkJob:
            parts = (np.asarray(layers[-1][start:stop]), np.asarray(data[start:stop]))
            return ChunkJob(JobKind.ENCODE, parts, arity, levels, keep_from)

        def store_replica(start: int, nodes: Nodes) -> None:
            replica[start : start + nodes.shape[0]] = nodes

        comm_c = build_tree(tree_c, columns_job, engine, chunk_nodes,
                            progress=_stage(progress, "tree-c"))
        comm_r_last = build_tree(tree_r_last, encode_job, engine, chunk_nodes,
                                 sink=store_replica, progress=_stage(progress, "tree-r-last"))
    else:
        comm_c, comm_r_last = _reference_trees(layers, cache, tree_c, tree_r_last, data,
                                               replica, engine, chunk_nodes, progress)
    replica.flush()
    with sealed.open("rb+") as f:
        os.fsync(f.fileno())
    comm_r = poseidon_hash([comm_c, comm_r_last])
    PersistentAux(comm_c, comm_r_last).write(cache)
    TemporaryAux(label_configs(cache, proof), _config_of(tree_d), _config_of(tree_r_last),
                 _config_of(tree_c)).write(cache)
    return SealPreCommitOutput(comm_r, pc1_output.comm_d)


def _stage(progress: Progress | None, stage: str) -> TreeProgress | None:
    """``progress`` bound to one stage name."""
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)
