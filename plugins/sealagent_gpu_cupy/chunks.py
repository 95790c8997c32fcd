"""Chunk jobs: the unit of work the PC2 pipeline hands to a device.

A job takes one chunk of a tree's leaves (or what they are made of) and returns the
chunk's leaves when it computed them plus the rows of its subtree, reduced on the device
up to ``levels`` rows above the leaves:

* ``COLUMNS``: the chunk of every label layer → column hashes (tree_c's leaves) → rows;
* ``ENCODE``: the last layer's labels and the unsealed data → replica nodes, whose first
  row above is hashed in the same kernel (tree_r_last) → rows;
* ``TREE``: given leaves → rows (the top rows of a tree, or tree_c over columns hashed
  elsewhere).

Rows below ``keep_from`` are never copied back (tree_r_last's files lack them); the top row
always is.  An engine runs jobs asynchronously: :meth:`Engine.submit` queues a job and
returns a handle whose :meth:`Pending.result` waits for it, so the pipeline prepares chunk
``i + 1`` while the device works on chunk ``i``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from sealagent.errors import CorruptDataError, InvalidInputError

Nodes = npt.NDArray[np.uint8]
ArrayT = TypeVar("ArrayT")


class JobKind(enum.Enum):
    """What a chunk job starts from."""

    COLUMNS = "columns"
    ENCODE = "encode"
    TREE = "tree"


@dataclass(frozen=True)
class ChunkJob:
    """One chunk: its inputs (host arrays of equal length) and how far to reduce it."""

    kind: JobKind
    inputs: tuple[Nodes, ...]
    arity: int
    """Arity of the tree rows."""
    levels: int
    """Rows above the leaves computed on the device (0: only the leaves, for COLUMNS)."""
    keep_from: int = 1
    """Lowest row above the leaves that is copied back."""

    def __post_init__(self) -> None:
        """Check the inputs against the kind and the chunk against the arity."""
        wanted = {JobKind.ENCODE: 2, JobKind.TREE: 1}.get(self.kind)
        if not self.inputs or (wanted is not None and len(self.inputs) != wanted):
            raise InvalidInputError(f"a {self.kind.value} job has {wanted or 'some'} inputs, "
                                    f"got {len(self.inputs)}")
        n = self.inputs[0].shape[0]
        if any(x.shape != (n, 32) or x.dtype != np.uint8 for x in self.inputs):
            raise InvalidInputError("chunk inputs must be (n, 32) uint8 arrays of one length")
        if self.levels < (0 if self.kind is JobKind.COLUMNS else 1) or \
                n % self.arity**self.levels:
            raise InvalidInputError(f"{n} nodes cannot be reduced {self.levels} rows by "
                                    f"{self.arity}")

    @property
    def nodes(self) -> int:
        """Leaves in the chunk."""
        return int(self.inputs[0].shape[0])

    def kept(self, level: int) -> bool:
        """Whether row ``level`` (1 = just above the leaves) is copied back."""
        return level == self.levels or level >= self.keep_from


@dataclass
class ChunkOutput:
    """What comes back: the leaves (COLUMNS, ENCODE) and the kept rows by level."""

    leaves: Nodes | None
    rows: dict[int, Nodes] = field(default_factory=dict)


class KernelOps(Protocol[ArrayT]):
    """The kernels on one kind of array (numpy on the host, cupy on a GPU)."""

    def hash(self, arity: int, nodes: ArrayT, item_stride: int, input_stride: int,
             count: int) -> ArrayT:
        """``count`` Poseidon hashes; input ``j`` of hash ``i`` is node ``i·item + j·input``."""

    def encode_hash(self, arity: int, key: ArrayT, data: ArrayT) -> tuple[ArrayT, ArrayT]:
        """The replica ``key + data`` and the hash of each group of ``arity`` of its nodes."""


def reduce_chunk(ops: KernelOps[ArrayT], job: ChunkJob, inputs: ArrayT,
                 keep: Callable[[int, ArrayT], None], *,
                 second: ArrayT | None = None) -> ArrayT | None:
    """Run ``job`` on device arrays; ``keep(level, row)`` receives each kept row.

    ``inputs`` is the job's inputs on the device: the layers one after another for
    COLUMNS, the key for ENCODE (``second`` = the data), the leaves for TREE.
    Returns the leaves the job computed (column hashes or replica), if any.
    """
    n, arity = job.nodes, job.arity
    leaves: ArrayT | None = None
    level = 0
    row = inputs
    if job.kind is JobKind.COLUMNS:
        layers = len(job.inputs)
        row = leaves = ops.hash(layers, inputs, 1, n, n)
    elif job.kind is JobKind.ENCODE:
        if second is None:
            raise InvalidInputError("an encode job needs the data")
        leaves, row = ops.encode_hash(arity, inputs, second)
        level = 1
        if job.kept(level):
            keep(level, row)
    while level < job.levels:
        level += 1
        count = n // arity**level
        row = ops.hash(arity, row, arity, 1, count)
        if job.kept(level):
            keep(level, row)
    return leaves


class Pending(Protocol):
    """A submitted job."""

    def result(self) -> ChunkOutput:
        """Wait for the job; its arrays stay valid until the engine's next-but-one submit."""


class Engine(Protocol):
    """Runs chunk jobs on a device."""

    @property
    def device_name(self) -> str:
        """The device, as the operator knows it."""

    def submit(self, job: ChunkJob) -> Pending:
        """Queue ``job``."""


@dataclass
class Done:
    """A job that finished when it was submitted."""

    output: ChunkOutput

    def result(self) -> ChunkOutput:
        """The output."""
        return self.output


def raise_if_bad(bad: int, job: ChunkJob) -> None:
    """Raise when a kernel saw a node that is not a canonical field element."""
    if bad:
        raise CorruptDataError(
            f"a {job.kind.value} chunk holds a node that is not a field element (≥ r)")


def stack_inputs(inputs: Sequence[Nodes], out: Nodes) -> Nodes:
    """Copy the job's inputs one after another into ``out`` (``(k·n, 32)``); return it."""
    n = inputs[0].shape[0]
    for i, part in enumerate(inputs):
        out[i * n : (i + 1) * n] = part
    return out
