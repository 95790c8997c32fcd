"""The proofs core's PreCommit2 kernels on a chunk engine (:mod:`sealagent.proofs.kernels`).

:func:`engine_kernels` gives a :class:`~sealagent.proofs.kernels.SealKernels` whose column
hasher, tree_c builder and tree_r_last builder hand chunks to an engine; PreCommit2 itself
(files, names, checks, ``p_aux``/``t_aux``) stays the core's
:func:`~sealagent.proofs.seal.seal_pre_commit_phase2`.

* column hasher: the label layers' chunks → column hashes (``COLUMNS`` jobs);
* tree_c builder: chunks of the column hashes → each chunk's subtree, reduced on the
  device, then the top rows (``TREE`` jobs, :func:`~sealagent_gpu_cupy.trees.build_tree`);
* tree_r_last builder: chunks of the last layer and the data → the replica, encoded in the
  kernel that hashes tree_r_last's first row, and the rest of each chunk's subtree
  (``ENCODE`` jobs); only the rows the level-cache file keeps are copied back.

Every call opens its own engine (streams and pinned buffers), so one kernels object may
serve two sectors on two threads; compiled kernels are shared by the process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from sealagent.errors import PluginError
from sealagent.proofs.kernels import (
    REFERENCE_KERNELS,
    Progress,
    SealKernels,
    report,
)
from sealagent.proofs.merkle import POSEIDON_HASHER, TreeLayout
from sealagent_gpu_cupy.chunks import ChunkJob, ChunkOutput, Engine, JobKind, Nodes
from sealagent_gpu_cupy.trees import build_tree, run_pipelined

DEFAULT_CHUNK_NODES: Final = 1 << 24
"""Leaves per chunk (8^8: a 512 MiB sector in one chunk; 512 MiB per label layer)."""

COLUMN_STAGING_BYTES: Final = 1 << 30
"""Most bytes of label layers one column job stages (per lane): 11 layers take chunks of
2^21 nodes, 2 layers chunks of 2^24."""

EngineFactory = Callable[[], Engine]


def column_chunk_nodes(chunk_nodes: int, layers: int) -> int:
    """Nodes per column job: ``chunk_nodes``, lowered to a power of two whose ``layers``
    chunks fit :data:`COLUMN_STAGING_BYTES`."""
    fits = 1 << max(0, (COLUMN_STAGING_BYTES // (32 * layers)).bit_length() - 1)
    return max(1, min(chunk_nodes, fits))


@dataclass(frozen=True)
class Placement:
    """Which parts run on the engine (the rest runs on the reference kernels)."""

    columns: bool = True
    trees: bool = True

    @property
    def any(self) -> bool:
        """Whether the engine has anything to do."""
        return self.columns or self.trees


@dataclass(frozen=True)
class EngineColumnHasher:
    """:class:`~sealagent.proofs.kernels.ColumnHasher` on an engine."""

    open_engine: EngineFactory
    chunk_nodes: int

    def __call__(self, layers: Sequence[Nodes], out: Nodes,
                 progress: Progress | None = None) -> None:
        """Fill ``out`` with the column hashes (see :func:`column_chunk_nodes`)."""
        nodes = out.shape[0]
        step = column_chunk_nodes(self.chunk_nodes, len(layers))
        jobs = ((start, ChunkJob(JobKind.COLUMNS,
                                 tuple(np.asarray(x[start : start + step]) for x in layers),
                                 len(layers), 0))
                for start in range(0, nodes, step))

        def finish(start: int, job: ChunkJob, done: ChunkOutput) -> None:
            if done.leaves is None:
                raise PluginError("a columns job returned no column hashes")
            out[start : start + job.nodes] = done.leaves
            report(progress, "tree-c", start + job.nodes, nodes)

        run_pipelined(self.open_engine(), jobs, finish)


def _is_poseidon(layout: TreeLayout) -> bool:
    """The engine hashes Poseidon trees only."""
    return layout.hasher.name == POSEIDON_HASHER.name


@dataclass(frozen=True)
class EngineTreeBuilder:
    """:class:`~sealagent.proofs.kernels.TreeBuilder` on an engine (Poseidon trees)."""

    open_engine: EngineFactory
    chunk_nodes: int

    def __call__(self, layout: TreeLayout, leaves: Nodes) -> bytes:
        """Write the tree's files chunk by chunk; other hashers go to the reference."""
        if not _is_poseidon(layout):
            return REFERENCE_KERNELS.tree_c_builder(layout, leaves)
        arity = layout.shape.base

        def job(start: int, stop: int, levels: int, keep_from: int) -> ChunkJob:
            return ChunkJob(JobKind.TREE, (np.asarray(leaves[start:stop]),), arity, levels,
                            keep_from)

        return build_tree(layout, job, self.open_engine(), self.chunk_nodes)


@dataclass(frozen=True)
class EngineReplicaTreeBuilder:
    """:class:`~sealagent.proofs.kernels.ReplicaTreeBuilder` on an engine, encoding fused."""

    open_engine: EngineFactory
    chunk_nodes: int

    def __call__(self, layout: TreeLayout, key: Nodes, data: Nodes, replica: Nodes,
                 progress: Progress | None = None) -> bytes:
        """Write the replica and tree_r_last's files; return ``comm_r_last``."""
        if not _is_poseidon(layout):
            return REFERENCE_KERNELS.tree_r_last_builder(layout, key, data, replica, progress)
        arity = layout.shape.base

        def job(start: int, stop: int, levels: int, keep_from: int) -> ChunkJob:
            parts = (np.asarray(key[start:stop]), np.asarray(data[start:stop]))
            return ChunkJob(JobKind.ENCODE, parts, arity, levels, keep_from)

        def store(start: int, nodes: Nodes) -> None:
            replica[start : start + nodes.shape[0]] = nodes

        def encoded(done: int, total: int) -> None:
            report(progress, "encode", done, total)

        return build_tree(layout, job, self.open_engine(), self.chunk_nodes, sink=store,
                          progress=encoded)


def engine_kernels(open_engine: EngineFactory, placement: Placement, chunk_nodes: int,
                   name: str) -> SealKernels:
    """PreCommit2 kernels with the placed parts on engines from ``open_engine``."""
    reference = REFERENCE_KERNELS
    return SealKernels(
        column_hasher=(EngineColumnHasher(open_engine, chunk_nodes) if placement.columns
                       else reference.column_hasher),
        tree_c_builder=(EngineTreeBuilder(open_engine, chunk_nodes) if placement.trees
                        else reference.tree_c_builder),
        tree_r_last_builder=(EngineReplicaTreeBuilder(open_engine, chunk_nodes)
                             if placement.trees else reference.tree_r_last_builder),
        name=name,
    )
