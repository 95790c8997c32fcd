"""Commit2 and seal verification: filecoin-proofs' ``seal_commit_phase2`` and ``verify_seal``.

Commit2 proves every partition's circuit from the Commit1 output with the circuit's
parameters (see :mod:`sealagent.snark.parameters`) and checks the proof with the
verifying key before returning it, as filecoin-proofs does.  The proof is 192 bytes per
partition, concatenated.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sealagent.errors import InvalidInputError, VerificationError
from sealagent.proofs.challenges import bytes32, partition_challenges
from sealagent.proofs.commit import SealCommitPhase1Output, check_seal_commit_phase1
from sealagent.proofs.graph import StackedGraph
from sealagent.proofs.seal import generate_replica_id
from sealagent.snark.cs import ConstraintSystem
from sealagent.snark.groth16 import PROOF_BYTES, Progress, Proof, prove, verify
from sealagent.snark.kernels import REFERENCE_PROVER_KERNELS, ProverKernels
from sealagent.snark.parameters import load_parameters, load_verifying_key
from sealagent.snark.porep import synthesize_stacked
from sealagent.snark.stacked import circuit_params, partition_witness, public_inputs
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof


def synthesize_partition(c1_output: SealCommitPhase1Output, k: int) -> ConstraintSystem:
    """The witness-mode constraint system of partition ``k``."""
    out = c1_output
    cs = ConstraintSystem(witness=True)
    witness = partition_witness(out.vanilla_proofs[k], out.replica_id, out.comm_d, out.comm_r)
    synthesize_stacked(cs, circuit_params(out.registered_proof), witness)
    return cs


def seal_commit_phase2(
    c1_output: SealCommitPhase1Output, prover_id: bytes, sector_id: int,
    cache_dir: Path | None = None, progress: Progress | None = None,
    kernels: ProverKernels = REFERENCE_PROVER_KERNELS,
) -> bytes:
    """The SNARK proof of a Commit1 output: 192 bytes per partition.

    ``kernels`` are the prover's transforms (:mod:`sealagent.snark.kernels`).

    The Commit1 output is checked first (VerificationError names what is wrong), and the
    finished proof is verified with the verifying key before it is returned.
    """
    check_seal_commit_phase1(c1_output, prover_id, sector_id)
    proof = c1_output.registered_proof
    params = load_parameters(proof, cache_dir)
    parts: list[bytes] = []
    for k in range(proof.partitions):
        cs = synthesize_partition(c1_output, k)
        bad = cs.first_unsatisfied()
        if bad is not None:
            raise VerificationError(f"partition {k}: the witness violates constraint {bad}")
        parts.append(prove(params, cs, progress or (lambda s, d, t: None), kernels).to_bytes())
    out = b"".join(parts)
    if not verify_seal(proof, c1_output.comm_r, c1_output.comm_d, prover_id, sector_id,
                       c1_output.ticket, c1_output.seed, out, cache_dir=cache_dir):
        raise VerificationError("the new seal proof does not verify")
    return out


@cache
def _parents(proof: RegisteredSealProof) -> StackedGraph:
    return StackedGraph.for_proof(proof)


def seal_public_inputs(
    registered_proof: RegisteredSealProof | str | int, comm_r: bytes, comm_d: bytes,
    replica_id: bytes, seed: bytes, k: int,
) -> list[int]:
    """Partition ``k``'s public inputs (ONE excluded)."""
    proof = resolve_proof(registered_proof)
    challenges = partition_challenges(proof, replica_id, k, seed=seed, comm_r=comm_r)
    return public_inputs(replica_id, comm_d, comm_r, challenges, _parents(proof).parents)


def verify_seal(
    registered_proof: RegisteredSealProof | str | int, comm_r: bytes, comm_d: bytes,
    prover_id: bytes, sector_id: int, ticket: bytes, seed: bytes, proof_bytes: bytes,
    *, cache_dir: Path | None = None,
) -> bool:
    """Whether ``proof_bytes`` proves the sealing of this sector (one pairing per partition).

    Malformed proof bytes give False; a missing or corrupt verifying key raises.
    """
    proof = resolve_proof(registered_proof)
    comm_r, comm_d = bytes32("comm_r", comm_r), bytes32("comm_d", comm_d)
    if len(proof_bytes) != PROOF_BYTES * proof.partitions:
        return False
    vk = load_verifying_key(proof, cache_dir)
    replica_id = generate_replica_id(bytes32("prover_id", prover_id), sector_id,
                                     bytes32("ticket", ticket), comm_d, proof.porep_id)
    for k in range(proof.partitions):
        chunk = proof_bytes[k * PROOF_BYTES : (k + 1) * PROOF_BYTES]
        try:
            groth = Proof.from_bytes(chunk)
            inputs = seal_public_inputs(proof, comm_r, comm_d, replica_id, seed, k)
        except InvalidInputError:
            return False
        if not verify(vk, groth, inputs):
            return False
    return True

