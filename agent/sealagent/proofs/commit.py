"""Commit phase 1: the vanilla proofs of the challenged nodes, and their verification.

The rules are docs/porep.md §9.

:func:`seal_commit_phase1` is filecoin-proofs' function of the same name: it derives the
challenges of every partition from the proof type's rule (interactive: the seed;
synthetic: the seed selects among the synthetic challenges, which depend on comm_r;
non-interactive: comm_r only), opens each challenged node in the cache's layers and
trees, and checks its own output before returning it.

Synthetic proofs (``…_Feat_SyntheticPoRep``) are proven on demand here: C1 opens the
selected synthetic challenges straight from the layers and trees, so the cache keeps its
layers until C1 (no ``syn-porep-vanilla-proofs.dat`` is written; one written by
rust-fil-proofs is removed by :func:`~sealagent.proofs.cache_files.clear_synthetic_proofs`).
The proofs are the same either way: rust's persisted proofs are rebuilt into exactly
these structures before they are returned.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sealagent.errors import (
    CommitmentMismatchError,
    CorruptDataError,
    InvalidInputError,
    VerificationError,
)
from sealagent.proofs.cache_files import (
    PersistentAux,
    TemporaryAux,
    existing_dir,
    sector_file,
)
from sealagent.proofs.challenges import bytes32, partition_challenges
from sealagent.proofs.field import fr_from_bytes
from sealagent.proofs.graph import StackedGraph
from sealagent.proofs.merkle import domain_to_json, tree_c_layout, tree_d_layout, tree_r_last_layout
from sealagent.proofs.pieces import PieceInfo, generate_data_commitment
from sealagent.proofs.poseidon import poseidon_hash
from sealagent.proofs.seal import (
    domain_field,
    generate_replica_id,
    json_object,
    map_nodes,
    open_layers,
    proof_from_json,
)
from sealagent.proofs.vanilla import SealedTrees, VanillaProof, verify_vanilla_proof
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof


@dataclass(frozen=True)
class SealCommitPhase1Output:
    """filecoin-proofs' ``SealCommitPhase1Output``: one list of proofs per partition."""

    registered_proof: RegisteredSealProof
    vanilla_proofs: tuple[tuple[VanillaProof, ...], ...]
    comm_r: bytes
    comm_d: bytes
    replica_id: bytes
    seed: bytes
    ticket: bytes

    def to_json(self) -> dict[str, Any]:
        """serde form (docs/porep.md §9.6); the proofs are keyed by the ``V1`` name of the
        sector size."""
        return {
            "registered_proof": self.registered_proof.name,
            "vanilla_proofs": {self.registered_proof.v1_name: [
                [p.to_json() for p in partition] for partition in self.vanilla_proofs]},
            "comm_r": domain_to_json(self.comm_r),
            "comm_d": domain_to_json(self.comm_d),
            "replica_id": domain_to_json(self.replica_id),
            "seed": domain_to_json(self.seed),
            "ticket": domain_to_json(self.ticket),
        }

    @classmethod
    def from_json(cls, obj: Any) -> SealCommitPhase1Output:
        """Parse the serde form (or JSON text of it); InvalidInputError if malformed."""
        data = json_object(obj, "C1 output")
        proof = proof_from_json(data)
        vanilla = data.get("vanilla_proofs")
        if not isinstance(vanilla, Mapping) or set(vanilla) != {proof.v1_name}:
            raise InvalidInputError(f"vanilla_proofs must be keyed by {proof.v1_name}")
        partitions = vanilla[proof.v1_name]
        if not isinstance(partitions, list) or not all(isinstance(p, list) for p in partitions):
            raise InvalidInputError("vanilla_proofs must be a list of lists of proofs")
        return cls(
            proof,
            tuple(tuple(VanillaProof.from_json(p) for p in part) for part in partitions),
            *(domain_field(data, key)
              for key in ("comm_r", "comm_d", "replica_id", "seed", "ticket")),
        )



def seal_commit_phase1(
    registered_proof: RegisteredSealProof | str | int,
    cache_dir: str | os.PathLike[str],
    sealed_path: str | os.PathLike[str],
    *,
    prover_id: bytes,
    sector_id: int,
    ticket: bytes,
    seed: bytes,
    pieces: Sequence[PieceInfo],
) -> SealCommitPhase1Output:
    """Commit1: the vanilla proofs of every partition's challenges, checked before returning.

    Reads ``p_aux``, ``t_aux``, the layers and the trees in ``cache_dir`` and the replica
    at ``sealed_path``.  The pieces must give the sector's comm_d
    (CommitmentMismatchError); corrupt or missing cache files raise CorruptDataError; a
    proof that fails its own check (e.g. a damaged layer) raises VerificationError.
    """
    proof = resolve_proof(registered_proof)
    prover_id, ticket = bytes32("prover_id", prover_id), bytes32("ticket", ticket)
    seed = bytes32("seed", seed)
    cache = existing_dir(cache_dir, "cache directory")
    sealed = sector_file(sealed_path, proof.sector_size, "sealed file")
    p_aux, t_aux = PersistentAux.read(cache), TemporaryAux.read(cache)
    tree_d = tree_d_layout(cache, proof.sector_size)
    comm_d = tree_d.root()
    if generate_data_commitment(proof, pieces) != comm_d:
        raise CommitmentMismatchError("the pieces do not match the sector's comm_d")
    tree_c = tree_c_layout(cache, proof.shape)
    tree_r_last = tree_r_last_layout(cache, proof.shape,
                                     t_aux.tree_r_last_config.rows_to_discard)
    if tree_c.root() != p_aux.comm_c or tree_r_last.root() != p_aux.comm_r_last:
        raise CorruptDataError(f"the trees in {cache} do not match p_aux")
    comm_r = poseidon_hash([p_aux.comm_c, p_aux.comm_r_last])
    replica_id = generate_replica_id(prover_id, sector_id, ticket, comm_d, proof.porep_id)
    trees = SealedTrees(proof, open_layers(cache, proof, replica_id),
                        map_nodes(sealed, proof.nodes), tree_d, tree_c, tree_r_last,
                        StackedGraph.for_proof(proof))
    vanilla = tuple(
        tuple(trees.prove(c) for c in partition_challenges(proof, replica_id, k, seed=seed,
                                                           comm_r=comm_r))
        for k in range(proof.partitions)
    )
    out = SealCommitPhase1Output(proof, vanilla, comm_r, comm_d, replica_id, seed, ticket)
    try:
        check_seal_commit_phase1(out, prover_id, sector_id)
    except VerificationError as exc:
        raise VerificationError(f"invalid vanilla proof generated: {exc}") from None
    return out


def check_seal_commit_phase1(
    c1_output: SealCommitPhase1Output,
    prover_id: bytes | None = None,
    sector_id: int | None = None,
) -> None:
    """Verify a C1 output; raise VerificationError with the reason when it is invalid.

    Rust's ``verify_all_partitions`` (challenges re-derived from the output's own seed,
    comm_r and replica id; every proof verified with :func:`verify_vanilla_proof`, which
    also ties the labeling proofs' parent labels to the opened columns).  Given the
    prover id and sector number, the replica id is recomputed from them, the ticket and
    comm_d, which also binds the ticket.  The seed is not used by non-interactive proofs.
    """
    if not isinstance(c1_output, SealCommitPhase1Output):
        raise InvalidInputError("c1_output must be a SealCommitPhase1Output")
    out = c1_output
    proof = out.registered_proof
    if (prover_id is None) != (sector_id is None):
        raise InvalidInputError("give both prover_id and sector_id, or neither")
    if prover_id is not None and sector_id is not None:
        expected = generate_replica_id(prover_id, sector_id, out.ticket, out.comm_d,
                                       proof.porep_id)
        if expected != out.replica_id:
            raise VerificationError("replica_id does not follow from prover, sector, ticket "
                                    "and comm_d")
    for name, value in (("comm_d", out.comm_d), ("comm_r", out.comm_r),
                        ("replica_id", out.replica_id)):
        try:
            fr_from_bytes(value)
        except InvalidInputError:
            raise VerificationError(f"{name} is not a field element") from None
        if name != "replica_id" and value == bytes(32):
            raise VerificationError(f"{name} is all zeros")
    if len(out.vanilla_proofs) != proof.partitions:
        raise VerificationError(f"{len(out.vanilla_proofs)} partitions, {proof.name} has "
                                f"{proof.partitions}")
    parents_of = cache(StackedGraph.for_proof(proof).parents)
    for k, partition in enumerate(out.vanilla_proofs):
        challenges = partition_challenges(proof, out.replica_id, k, seed=out.seed,
                                          comm_r=out.comm_r)
        if len(partition) != len(challenges):
            raise VerificationError(f"partition {k} has {len(partition)} proofs, expected "
                                    f"{len(challenges)}")
        for i, (vanilla, challenge) in enumerate(zip(partition, challenges, strict=True)):
            try:
                verify_vanilla_proof(vanilla, challenge, registered_proof=proof,
                                     replica_id=out.replica_id, comm_d=out.comm_d,
                                     comm_r=out.comm_r, parents_of=parents_of)
            except VerificationError as exc:
                raise VerificationError(f"partition {k}, proof {i} (challenge {challenge}): "
                                        f"{exc}") from None


def verify_seal_commit_phase1(
    c1_output: SealCommitPhase1Output,
    prover_id: bytes | None = None,
    sector_id: int | None = None,
) -> bool:
    """Whether a C1 output verifies (see :func:`check_seal_commit_phase1`)."""
    try:
        check_seal_commit_phase1(c1_output, prover_id, sector_id)
    except VerificationError:
        return False
    return True
