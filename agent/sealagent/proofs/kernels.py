"""Kernel seams: the hot loops of PreCommit1, PreCommit2 and Unseal, swappable by a backend.

The phase functions (:func:`~sealagent.proofs.seal.seal_pre_commit_phase1`,
:func:`~sealagent.proofs.seal.seal_pre_commit_phase2`,
:func:`~sealagent.proofs.unseal.unseal_range`) own everything that must stay exactly as
rust-fil-proofs has it: argument checks, file names and formats, resuming, discarded rows,
``p_aux``/``t_aux`` and the commitment checks.  The arithmetic they spend their time in is
done by five kernels, passed together as one :class:`SealKernels` (``kernels=`` argument,
default :data:`REFERENCE_KERNELS`, the pure Python + numpy implementations):

========================  ==============================================  ==============
kernel                    computes                                        phase
========================  ==============================================  ==============
``labeler``               every label of one SDR layer                    PC1, Unseal
``column_hasher``         ``Poseidon_L(label_1[j], …, label_L[j])``       PC2
``tree_c_builder``        tree_c's files and root over the column hashes  PC2
``tree_r_last_builder``   the replica ``key + data (mod r)`` and tree_r   PC2
``parents_builder``       the graph's parents, when the parent cache      PC1, Unseal
                          file must be built (once per host)
``tree_d_builder``        tree_d's file and ``comm_d`` over the staged    PC1
                          data (SHA256-trunc254, binary)
========================  ==============================================  ==============

Contracts common to every kernel:

* **Exactness**: outputs are byte for byte the reference's (``sealagent.testing`` checks a
  backend's files against ``cpu``).
* **Threads**: a kernel object is built by its backend with the thread count the phase was
  granted and never runs more threads than that.  The phase calls one kernel at a time
  from one thread and the kernel returns only when its work, on every thread it started,
  is finished.  Kernels keep no per-call state on the object: a process may run the same
  kernels for two sectors on two threads at once (e.g. two PC1s side by side).
* **Memory**: inputs are ``(n, 32)`` uint8 arrays, usually read-only memory maps of the
  sector's files; a kernel streams them a chunk at a time instead of loading them whole.
* **Errors**: bad input raises :class:`~sealagent.errors.InvalidInputError`; a kernel
  never writes outside the buffers and files it is given.

A backend that only has faster *row hashing* (a Poseidon of many groups at once) keeps the
reference's tree files by passing a :class:`~sealagent.proofs.merkle.TreeHasher` to
:func:`tree_builder_with` and :func:`replica_tree_builder_with`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from sealagent.proofs.encoding import encode_nodes
from sealagent.proofs.graph import ParentsArray
from sealagent.proofs.labels import LabelsArray, ProgressCallback, label_layer
from sealagent.proofs.merkle import NODE_BYTES, Nodes, TreeHasher, TreeLayout
from sealagent.proofs.parent_cache import ParentsBuilder as ParentsBuilder
from sealagent.proofs.parent_cache import Progress as Progress
from sealagent.proofs.parent_cache import reference_parents
from sealagent.proofs.poseidon import poseidon_hash_level

# Progress is ``progress(stage, done, total)``: stages are ``parents`` (building the parent
# cache), ``tree-d``, ``layer-<l>``, ``tree-c``, ``tree-c-build``, ``encode``,
# ``tree-r-last``; ``done``/``total`` count nodes (or 0/1, 1/1 for a whole step).

CHUNK_NODES: Final = 1 << 16
"""Nodes the reference kernels process per step when streaming a sector (2 MiB per layer)."""


class LayerLabeler(Protocol):
    """Label one SDR layer (PreCommit1; Unseal when it regenerates the key).

    :param replica_id: 32 bytes.
    :param layer: the layer number, from 1.
    :param parents: the graph, ``(nodes, 14)`` uint32 (6 base parents, then 8 expander
        parents; a read-only memory map of the parent cache file).
    :param out: a writable, contiguous ``nodes·32``-byte buffer (usually a memory map of
        the layer's ``.partial.dat`` file); every label is written into it, node 0 first.
    :param prev: layer ``layer − 1`` as ``(nodes, 32)`` uint8, given exactly when
        ``layer > 1``.
    :param progress: called as ``progress(layer, nodes_done, nodes)`` from the calling
        thread, at least once when the layer is complete.

    Validation is :func:`~sealagent.proofs.labels.check_layer_arguments`'s (a kernel calls
    it before touching ``out``).  Labels are sequential, so a labeler uses one thread per
    call; it must release the GIL (or be pure Python) so that two layers of different
    sectors can be labelled on two threads at once.
    """

    def __call__(self, replica_id: bytes, layer: int, parents: ParentsArray, out: memoryview,
                 prev: LabelsArray | None, progress: ProgressCallback | None = None) -> None:
        """Write every label of ``layer`` into ``out``."""


class ColumnHasher(Protocol):
    """Hash the columns of the label layers (PreCommit2, tree_c's leaves).

    :param layers: the ``L`` label layers in order, each ``(nodes, 32)`` uint8 (read-only
        memory maps; labels are canonical field elements).
    :param out: ``(nodes, 32)`` uint8, writable: ``out[j]`` receives the MerkleTree-tagged
        ``Poseidon_L(layers[0][j], …, layers[L−1][j])``, 32 bytes little-endian.
    :param progress: called as ``progress("tree-c", nodes_done, nodes)`` from the calling
        thread as work completes.

    May spread the nodes over its granted threads.
    """

    def __call__(self, layers: Sequence[Nodes], out: Nodes,
                 progress: Progress | None = None) -> None:
        """Fill ``out`` with the column hashes."""


class TreeBuilder(Protocol):
    """Build a tree's files from its leaves (PC2: tree_c over the column hashes; PC1: tree_d).

    :param layout: where and how the tree is stored (:class:`TreeLayout`: files, shape,
        hasher, level cache and discarded rows); the files are written exactly as
        :meth:`TreeLayout.build` writes them.
    :param leaves: ``(n_leaves, 32)`` uint8 (a memory map).
    :returns: the root of the whole (compound) tree.
    """

    def __call__(self, layout: TreeLayout, leaves: Nodes) -> bytes:
        """Write the tree's files; return its root."""


class ReplicaTreeBuilder(Protocol):
    """Encode the replica and build tree_r_last over it (PreCommit2).

    :param layout: tree_r_last's layout (a level-cache tree: its leaves are the replica).
    :param key: the last label layer, ``(nodes, 32)`` uint8.
    :param data: the staged data nodes (tree_d's leaf row), ``(nodes, 32)`` uint8.
    :param replica: ``(nodes, 32)`` uint8, writable (a memory map of the sealed file):
        receives ``replica[j] = (key[j] + data[j]) mod r``.  The phase flushes and syncs it.
    :param progress: called as ``progress("encode", nodes_done, nodes)``.
    :returns: ``comm_r_last``, the root of tree_r_last over ``replica``.

    The encoding may be fused with hashing the bottom rows of the tree; the replica must
    be complete when the builder returns.
    """

    def __call__(self, layout: TreeLayout, key: Nodes, data: Nodes, replica: Nodes,
                 progress: Progress | None = None) -> bytes:
        """Write the replica and tree_r_last's files; return ``comm_r_last``."""


def report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    """Call the progress callback if there is one."""
    if progress is not None:
        progress(stage, done, total)


def hash_columns(layers: Sequence[Nodes], out: Nodes, progress: Progress | None = None) -> None:
    """The reference :class:`ColumnHasher`: numpy stacks a chunk, Python-int Poseidon hashes it."""
    count, nodes = len(layers), out.shape[0]
    for start in range(0, nodes, CHUNK_NODES):
        stop = min(start + CHUNK_NODES, nodes)
        columns = np.stack([layer[start:stop] for layer in layers], axis=1)
        out[start:stop] = poseidon_hash_level(columns.reshape(-1, NODE_BYTES), count)
        report(progress, "tree-c", stop, nodes)


def build_tree(layout: TreeLayout, leaves: Nodes) -> bytes:
    """The reference :class:`TreeBuilder`: :meth:`TreeLayout.build`."""
    return layout.build(leaves)


def encode_replica(key: Nodes, data: Nodes, replica: Nodes,
                   progress: Progress | None = None) -> None:
    """``replica[j] = key[j] + data[j] (mod r)`` for every node, chunk by chunk (numpy)."""
    nodes = replica.shape[0]
    for start in range(0, nodes, CHUNK_NODES):
        stop = min(start + CHUNK_NODES, nodes)
        replica[start:stop] = encode_nodes(np.asarray(key[start:stop]),
                                           np.asarray(data[start:stop]))
        report(progress, "encode", stop, nodes)


def build_replica_tree(layout: TreeLayout, key: Nodes, data: Nodes, replica: Nodes,
                       progress: Progress | None = None) -> bytes:
    """The reference :class:`ReplicaTreeBuilder`: encode, then :meth:`TreeLayout.build`."""
    encode_replica(key, data, replica, progress)
    return layout.build(replica)


def tree_builder_with(hasher: TreeHasher) -> TreeBuilder:
    """A :class:`TreeBuilder` that writes the reference's files, hashing rows with ``hasher``.

    ``hasher`` replaces the layout's own (it must compute the same hash, faster).
    """
    def build(layout: TreeLayout, leaves: Nodes) -> bytes:
        return dataclasses.replace(layout, hasher=hasher).build(leaves)

    return build


def replica_tree_builder_with(hasher: TreeHasher) -> ReplicaTreeBuilder:
    """A :class:`ReplicaTreeBuilder`: numpy encoding, then the reference's files via ``hasher``."""
    build = tree_builder_with(hasher)

    def encode_and_build(layout: TreeLayout, key: Nodes, data: Nodes, replica: Nodes,
                         progress: Progress | None = None) -> bytes:
        encode_replica(key, data, replica, progress)
        return build(layout, replica)

    return encode_and_build


@dataclass(frozen=True)
class SealKernels:
    """The kernels one phase runs with (see the module documentation for the contracts)."""

    labeler: LayerLabeler = label_layer
    column_hasher: ColumnHasher = hash_columns
    tree_c_builder: TreeBuilder = build_tree
    tree_r_last_builder: ReplicaTreeBuilder = build_replica_tree
    parents_builder: ParentsBuilder = reference_parents
    tree_d_builder: TreeBuilder = build_tree
    name: str = "reference"
    """What these kernels are (``"multicore Poseidon (2 threads)"``), for logs and reports."""


REFERENCE_KERNELS: Final = SealKernels()
"""Pure Python + numpy kernels: what the ``cpu`` backend runs."""
