"""The PoRep circuit of a registered seal proof: its parameters, witness and public inputs.

The witness of a partition comes from that partition's vanilla proofs (the Commit1
output); the public inputs come from the statement alone (replica id, comm_d, comm_r and
the challenges with their parents), exactly as rust-fil-proofs'
``StackedCompound::generate_public_inputs`` computes them: a path's packed position bits
are the challenged leaf's index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sealagent.errors import InvalidInputError
from sealagent.proofs.field import fr_from_bytes
from sealagent.proofs.merkle import MerkleProof
from sealagent.proofs.vanilla import ColumnProof, VanillaProof
from sealagent.snark.merkle import PathLevel
from sealagent.snark.porep import (
    ChallengeWitness,
    ColumnWitness,
    StackedCircuitParams,
    StackedWitness,
)
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof


def circuit_params(registered_proof: RegisteredSealProof | str | int) -> StackedCircuitParams:
    """The circuit of one partition of a registered seal proof."""
    proof = resolve_proof(registered_proof)
    shape = proof.shape
    return StackedCircuitParams(
        nodes=proof.nodes, layers=proof.layers, challenges=proof.challenges_per_partition,
        base_arity=shape.base_arity, sub_arity=shape.sub_arity, top_arity=shape.top_arity,
    )


def _path(proof: MerkleProof) -> tuple[PathLevel, ...]:
    return tuple(
        PathLevel(el.arity, tuple(fr_from_bytes(h) for h in el.hashes), el.index)
        for el in proof.path
    )


def _column(proof: ColumnProof) -> ColumnWitness:
    return ColumnWitness(
        tuple(fr_from_bytes(r) for r in proof.column.rows), _path(proof.inclusion_proof)
    )


def partition_witness(
    vanilla: Sequence[VanillaProof], replica_id: bytes, comm_d: bytes, comm_r: bytes
) -> StackedWitness:
    """The circuit's witness for one partition's vanilla proofs."""
    if not vanilla:
        raise InvalidInputError("a partition needs at least one vanilla proof")
    comm_c, comm_r_last = vanilla[0].comm_c, vanilla[0].comm_r_last
    if any(p.comm_c != comm_c or p.comm_r_last != comm_r_last for p in vanilla):
        raise InvalidInputError("inconsistent comm_c / comm_r_last across the vanilla proofs")
    challenges = tuple(
        ChallengeWitness(
            challenge=p.labeling_proofs[0].node,
            data_leaf=fr_from_bytes(p.comm_d_proofs.leaf),
            comm_d_path=_path(p.comm_d_proofs),
            drg_parents=tuple(_column(c) for c in p.drg_parents),
            exp_parents=tuple(_column(c) for c in p.exp_parents),
            comm_r_last_path=_path(p.comm_r_last_proof),
            comm_c_path=_path(p.c_x.inclusion_proof),
        )
        for p in vanilla
    )
    return StackedWitness(
        replica_id=fr_from_bytes(replica_id), comm_d=fr_from_bytes(comm_d),
        comm_r=fr_from_bytes(comm_r), comm_r_last=fr_from_bytes(comm_r_last),
        comm_c=fr_from_bytes(comm_c), challenges=challenges,
    )


def public_inputs(
    replica_id: bytes, comm_d: bytes, comm_r: bytes, challenges: Sequence[int],
    parents_of: Callable[[int], Sequence[int]],
) -> list[int]:
    """The partition's public inputs after ONE, in the circuit's order."""
    inputs = [fr_from_bytes(replica_id), fr_from_bytes(comm_d), fr_from_bytes(comm_r)]
    for c in challenges:
        inputs += [c, *parents_of(c), c, c, c]
    return inputs
