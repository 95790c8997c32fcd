"""The stacked-DRG PoRep circuit as storage-proofs-porep builds it (``stacked/circuit``).

Public inputs, in order: ONE, replica_id, comm_d, comm_r, then per challenge the packed
position bits of the comm_d path, of the 6 DRG and 8 expander parents' tree_c paths, the
challenge index (64 bits packed), the comm_r_last path and the challenged column's tree_c
path.  comm_c and comm_r_last are private; ``comm_r = Poseidon(comm_c, comm_r_last)`` is
enforced once.  Per challenge the circuit proves:

* the data leaf's inclusion in comm_d (binary SHA-256 tree);
* each parent's column, hashed with Poseidon (arity = layers), is in comm_c;
* the challenged node's label in every layer, recomputed with SHA-256 from the replica
  id, the layer, the node index and its 37 parent labels (the parent list repeated), its
  digest truncated to 254 bits;
* the encoding ``replica = label_last + data`` and its inclusion in comm_r_last;
* the challenged column's hash is in comm_c.

With 8 nodes, 2 layers, 1 challenge and an 8-0-0 tree this is 1,199,620 constraints and 22
public inputs, the numbers rust-fil-proofs' ``stacked_circuit`` test asserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sealagent.errors import InvalidInputError
from sealagent.snark.bits import (
    FALSE,
    alloc_bit,
    enforce_equal_nums,
    inputize,
    num_to_bits_le,
    pack_bits,
    pack_into_inputs,
    reverse_bit_numbering,
)
from sealagent.snark.cs import ONE, ConstraintSystem
from sealagent.snark.merkle import PathLevel, blank_path, enforce_inclusion
from sealagent.snark.poseidon import poseidon_merkle
from sealagent.snark.sha256 import sha256

DRG_PARENTS = 6
EXP_PARENTS = 8
TOTAL_PARENTS = 37


@dataclass(frozen=True)
class StackedCircuitParams:
    """What fixes the circuit: graph size, layers, challenges per partition, tree shape."""

    nodes: int
    layers: int
    challenges: int
    base_arity: int = 8
    sub_arity: int = 0
    top_arity: int = 0

    def __post_init__(self) -> None:
        """Reject shapes the circuit cannot be built for."""
        if self.layers < 1 or self.challenges < 1:
            raise InvalidInputError("the circuit needs at least one layer and one challenge")
        for arity in (self.base_arity, self.sub_arity, self.top_arity):
            if arity < 0 or arity == 1 or arity & (arity - 1):
                raise InvalidInputError("tree arities must be 0 or powers of two ≥ 2")
        if self.base_arity < 2 or (self.top_arity and not self.sub_arity):
            raise InvalidInputError("a tree needs a base arity, and a sub level under top")
        if self.nodes < 2 or self.nodes & (self.nodes - 1):
            raise InvalidInputError("the node count must be a power of two")
        self.tree_arities()

    def tree_arities(self) -> list[int]:
        """Arity of every level of a tree_c / tree_r_last path, from the leaf up."""
        per_base = self.nodes // (max(self.sub_arity, 1) * max(self.top_arity, 1))
        levels, size = 0, 1
        while size < per_base:
            size *= self.base_arity
            levels += 1
        if size != per_base or levels == 0:
            raise InvalidInputError(
                f"{self.nodes} nodes do not fill a {self.base_arity}-{self.sub_arity}-"
                f"{self.top_arity} tree"
            )
        extra = [a for a in (self.sub_arity, self.top_arity) if a]
        return [self.base_arity] * levels + extra

    def data_arities(self) -> list[int]:
        """Levels of the binary tree_d path."""
        return [2] * (self.nodes.bit_length() - 1)


@dataclass(frozen=True)
class ColumnWitness:
    """A parent's column (one label per layer) and its tree_c path."""

    rows: tuple[int, ...]
    path: tuple[PathLevel, ...]


@dataclass(frozen=True)
class ChallengeWitness:
    """Everything one challenge's part of the circuit needs (from a vanilla proof)."""

    challenge: int
    data_leaf: int
    comm_d_path: tuple[PathLevel, ...]
    drg_parents: tuple[ColumnWitness, ...]
    exp_parents: tuple[ColumnWitness, ...]
    comm_r_last_path: tuple[PathLevel, ...]
    comm_c_path: tuple[PathLevel, ...]


@dataclass(frozen=True)
class StackedWitness:
    """The statement's values and the private values of every challenge."""

    replica_id: int
    comm_d: int
    comm_r: int
    comm_r_last: int
    comm_c: int
    challenges: tuple[ChallengeWitness, ...] = field(default=())


def _blank_challenge(params: StackedCircuitParams) -> ChallengeWitness:
    tree = tuple(blank_path(params.tree_arities()))
    column = ColumnWitness((0,) * params.layers, tree)
    return ChallengeWitness(
        challenge=0, data_leaf=0, comm_d_path=tuple(blank_path(params.data_arities())),
        drg_parents=(column,) * DRG_PARENTS, exp_parents=(column,) * EXP_PARENTS,
        comm_r_last_path=tree, comm_c_path=tree,
    )


def _value(cs: ConstraintSystem, value: int) -> int | None:
    return value if cs.witness else None


def _column(cs: ConstraintSystem, column: ColumnWitness, comm_c: int) -> list[int]:
    rows = [cs.alloc(_value(cs, v)) for v in column.rows]
    enforce_inclusion(cs, "poseidon", poseidon_merkle(cs, rows), column.path, comm_c)
    return rows


def _label_bits(cs: ConstraintSystem, var: int) -> list[int]:
    return reverse_bit_numbering(num_to_bits_le(cs, var))


def create_label(
    cs: ConstraintSystem, replica_id_bits: Sequence[int], parents: Sequence[Sequence[int]],
    layer: int, node_bits_be: Sequence[int],
) -> int:
    """A label: SHA-256(replica_id ‖ layer ‖ node ‖ 37 parents) truncated to 254 bits."""
    if len(parents) != TOTAL_PARENTS:
        raise InvalidInputError(f"a label hashes {TOTAL_PARENTS} parents, got {len(parents)}")
    message = list(replica_id_bits) + [FALSE] * (-len(replica_id_bits) % 256)
    message += [(layer >> i) & 1 for i in range(31, -1, -1)]
    message += list(node_bits_be)
    message += [FALSE] * (512 - len(message))
    for parent in parents:
        message += parent
        message += [FALSE] * (-len(message) % 256)
    digest = reverse_bit_numbering(sha256(cs, message))
    return pack_bits(cs, digest)


def _expand_parents(parents: list[list[int]], layer: int) -> list[list[int]]:
    if layer > 1:
        return parents + parents + parents[:9]
    return parents * 6 + [parents[0]]


def _synthesize_challenge(
    cs: ConstraintSystem, ch: ChallengeWitness, replica_id_bits: Sequence[int],
    comm_d: int, comm_c: int, comm_r_last: int,
) -> None:
    data_leaf = cs.alloc(_value(cs, ch.data_leaf))
    enforce_inclusion(cs, "sha256", data_leaf, ch.comm_d_path, comm_d)
    drg = [_column(cs, col, comm_c) for col in ch.drg_parents]
    exp = [_column(cs, col, comm_c) for col in ch.exp_parents]
    layers = len(drg[0])
    challenge_bits = [alloc_bit(cs, _value(cs, (ch.challenge >> i) & 1)) for i in range(64)]
    pack_into_inputs(cs, challenge_bits)
    labels: list[int] = []
    for layer in range(1, layers + 1):
        parents = [_label_bits(cs, col[layer - 1]) for col in drg]
        if layer > 1:
            parents += [_label_bits(cs, col[layer - 2]) for col in exp]
        labels.append(create_label(
            cs, replica_id_bits, _expand_parents(parents, layer), layer, challenge_bits[::-1]
        ))
    key = labels[-1]
    encoded = cs.alloc((cs.value(key) + cs.value(data_leaf)) if cs.witness else None)
    cs.enforce({key: 1, data_leaf: 1}, {ONE: 1}, {encoded: 1})
    enforce_inclusion(cs, "poseidon", encoded, ch.comm_r_last_path, comm_r_last)
    enforce_inclusion(cs, "poseidon", poseidon_merkle(cs, labels), ch.comm_c_path, comm_c)


def _synthesize_shared(
    cs: ConstraintSystem, witness: StackedWitness | None
) -> tuple[list[int], int, int, int]:
    w = witness
    replica_id = cs.alloc(w.replica_id if w else None)
    inputize(cs, replica_id)
    replica_id_bits = reverse_bit_numbering(num_to_bits_le(cs, replica_id))
    comm_d = cs.alloc(w.comm_d if w else None)
    inputize(cs, comm_d)
    comm_r = cs.alloc(w.comm_r if w else None)
    inputize(cs, comm_r)
    comm_r_last = cs.alloc(w.comm_r_last if w else None)
    comm_c = cs.alloc(w.comm_c if w else None)
    enforce_equal_nums(cs, comm_r, poseidon_merkle(cs, [comm_c, comm_r_last]))
    return replica_id_bits, comm_d, comm_c, comm_r_last


def synthesize_stacked(
    cs: ConstraintSystem, params: StackedCircuitParams, witness: StackedWitness | None = None
) -> None:
    """Build the circuit in ``cs`` (shape mode: no witness; witness mode: its values)."""
    if cs.witness and witness is None:
        raise InvalidInputError("witness mode needs the stacked witness")
    if witness is not None and len(witness.challenges) != params.challenges:
        raise InvalidInputError(
            f"the circuit has {params.challenges} challenges, the witness "
            f"{len(witness.challenges)}"
        )
    replica_id_bits, comm_d, comm_c, comm_r_last = _synthesize_shared(cs, witness)
    challenges = witness.challenges if witness else (_blank_challenge(params),) * params.challenges
    for ch in challenges:
        _synthesize_challenge(cs, ch, replica_id_bits, comm_d, comm_c, comm_r_last)


@dataclass(frozen=True)
class CircuitInfo:
    """Constraint and public-input counts of one partition's circuit."""

    constraints: int
    public_inputs: int


def circuit_info(params: StackedCircuitParams) -> CircuitInfo:
    """Count the circuit (ONE included in the inputs, as bellperson counts them).

    Every challenge's part of a blank circuit is built identically, so one challenge is
    synthesized and multiplied out; the rest is synthesized as is.
    """
    cs = ConstraintSystem(witness=False)
    replica_id_bits, comm_d, comm_c, comm_r_last = _synthesize_shared(cs, None)
    shared_c, shared_i = cs.num_constraints, cs.num_inputs
    _synthesize_challenge(
        cs, _blank_challenge(params), replica_id_bits, comm_d, comm_c, comm_r_last
    )
    per_c, per_i = cs.num_constraints - shared_c, cs.num_inputs - shared_i
    return CircuitInfo(
        constraints=shared_c + params.challenges * per_c,
        public_inputs=shared_i + params.challenges * per_i,
    )
