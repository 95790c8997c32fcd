"""Building tree files chunk by chunk on a device.

Each base tree's leaves go to the engine in chunks of ``arity^k`` leaves (the biggest
subtree that fits in ``chunk_nodes``); the device reduces each chunk to its root, only the
rows the file keeps come back, and the chunk roots are reduced in one more job at the end.
The files are the reference's (:class:`~sealagent.proofs.merkle.TreeLayout`): same names,
sizes, row order and discarded rows.  The pipeline keeps two chunks in flight, so the host
reads chunk ``i + 1`` and writes chunk ``i − 1`` while the device hashes chunk ``i``.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import BinaryIO, Final, TypeAlias

import numpy as np

from sealagent.errors import InvalidInputError
from sealagent.proofs.merkle import NODE_BYTES, POSEIDON_HASHER, TreeLayout, compound_root
from sealagent_gpu_cupy.chunks import ChunkJob, ChunkOutput, Engine, JobKind, Nodes, Pending

IN_FLIGHT: Final = 2
"""Chunks submitted before the oldest is collected."""

JobFactory: TypeAlias = Callable[[int, int, int, int], ChunkJob]
"""``make_job(first leaf, end leaf, levels, keep_from)`` → the chunk's job."""

LeavesSink: TypeAlias = Callable[[int, Nodes], None]
"""``sink(first leaf, leaves)``: where computed leaves go besides the tree file."""

Progress: TypeAlias = Callable[[int, int], None]
"""``progress(done leaves, total leaves)``."""


def subtree_levels(height: int, arity: int, chunk_nodes: int) -> tuple[int, int]:
    """``(levels, span)``: the biggest ``span = arity^levels ≤ chunk_nodes``, ``levels ≤ height``.

    At least one level, as the reference's chunking does.
    """
    if chunk_nodes < 1:
        raise InvalidInputError(f"chunk_nodes must be positive, got {chunk_nodes}")
    levels, span = 1, arity
    while levels < height and span * arity <= chunk_nodes:
        levels, span = levels + 1, span * arity
    return levels, span


def run_pipelined(engine: Engine, jobs: Iterable[tuple[int, ChunkJob]],
                  finish: Callable[[int, ChunkJob, ChunkOutput], None]) -> None:
    """Submit ``(tag, job)`` pairs keeping :data:`IN_FLIGHT` queued; ``finish`` each in order.

    ``finish(tag, job, output)`` runs before the job after next is submitted, so it may
    use the output's arrays (an engine's buffers) but must copy what it keeps.
    """
    queue: collections.deque[tuple[int, ChunkJob, Pending]] = collections.deque()
    for tag, job in jobs:
        queue.append((tag, job, engine.submit(job)))
        if len(queue) >= IN_FLIGHT:
            tag, job, pending = queue.popleft()
            finish(tag, job, pending.result())
    while queue:
        tag, job, pending = queue.popleft()
        finish(tag, job, pending.result())


class _TreeFile:
    """One base tree's file: rows at their offsets (rows below ``first_stored_row`` dropped)."""

    def __init__(self, layout: TreeLayout, out: BinaryIO) -> None:
        self.layout, self.out = layout, out
        per_tree, arity = layout.leaves_per_tree, layout.shape.base
        sizes = [per_tree // arity**k for k in range(layout.height + 1)]
        self.offsets = [sum(sizes[layout.first_stored_row : row])
                        for row in range(layout.height + 1)]
        out.truncate(layout.file_nodes() * NODE_BYTES)

    def write(self, row: int, first: int, nodes: Nodes) -> None:
        """Store ``nodes`` as row ``row`` from node ``first`` on, if the file keeps that row."""
        if row >= self.layout.first_stored_row:
            self.out.seek((self.offsets[row] + first) * NODE_BYTES)
            self.out.write(np.ascontiguousarray(nodes).data)


def build_tree(layout: TreeLayout, make_job: JobFactory, engine: Engine, chunk_nodes: int,
               sink: LeavesSink | None = None, progress: Progress | None = None) -> bytes:
    """Write every base tree file of ``layout``; return the (compound) root."""
    arity, height = layout.shape.base, layout.height
    levels, span = subtree_levels(height, arity, chunk_nodes)
    keep_from = max(1, layout.first_stored_row)
    layout.cache_dir.mkdir(parents=True, exist_ok=True)
    roots = []
    for tree, path in enumerate(layout.paths()):
        base = tree * layout.leaves_per_tree
        with open(path, "wb") as out:
            file = _TreeFile(layout, out)
            tops: list[Nodes] = []

            def finish(chunk: int, job: ChunkJob, done: ChunkOutput, file: _TreeFile = file,
                       tops: list[Nodes] = tops, base: int = base) -> None:
                """Write one chunk's rows and keep its root."""
                leaves = done.leaves if done.leaves is not None else job.inputs[0]
                if sink is not None and done.leaves is not None:
                    sink(base + chunk * span, done.leaves)
                file.write(0, chunk * span, leaves)
                for level, row in done.rows.items():
                    file.write(level, chunk * span // arity**level, row)
                tops.append(np.array(done.rows[levels]))
                if progress is not None:
                    progress(base + (chunk + 1) * span, layout.n_leaves)

            jobs = ((chunk, make_job(start, start + span, levels, keep_from))
                    for chunk, start in enumerate(range(base, base + layout.leaves_per_tree,
                                                        span)))
            run_pipelined(engine, jobs, finish)
            top = np.concatenate(tops)
            if levels < height:
                job = ChunkJob(JobKind.TREE, (top,), arity, height - levels,
                               max(1, layout.first_stored_row - levels))
                upper: ChunkOutput = engine.submit(job).result()
                for level, row in upper.rows.items():
                    file.write(levels + level, 0, row)
                top = upper.rows[height - levels]
            roots.append(top[-1].tobytes())
    return compound_root(roots, layout.shape, POSEIDON_HASHER)
