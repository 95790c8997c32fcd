"""Checking a sector's proof before its commit is recorded (Lotus' ``checkCommit``).

The Commit1 output is checked in every case: it must belong to this sector (proof type,
CommD, CommR, ticket and seed as the sector recorded them; the replica id recomputed from
the prover and sector ids) and every vanilla proof of every partition must verify
(:func:`sealagent.proofs.commit.check_seal_commit_phase1`).

With ``[Proving] Snark = false`` that is the whole check, and the message says so.  With
SNARKs on, the Commit2 proof must also have the size Groth16 gives the sector's partitions
(192 bytes each) and verify with the circuit's verifying key
(:func:`sealagent.snark.seal.verify_seal`, one pairing check per partition); a missing or
corrupt verifying key fails the check with the reason.
"""

from __future__ import annotations

from typing import Final

from sealagent.errors import InvalidInputError, ProofsError, VerificationError
from sealagent.manager.fsm import SectorInfo
from sealagent.phases import SectorRef
from sealagent.proofs.cid import cid_to_sealed_commitment, cid_to_unsealed_commitment
from sealagent.proofs.commit import SealCommitPhase1Output, check_seal_commit_phase1
from sealagent.vocab.registry import resolve_proof

GROTH16_PROOF_BYTES: Final = 192


def _mismatch(output: SealCommitPhase1Output, sector: SectorInfo) -> str | None:
    """What in the C1 output differs from the sector's record, if anything."""
    proof = resolve_proof(sector.proof)
    expected = {
        "registered proof": (output.registered_proof, proof),
        "CommD": (output.comm_d, cid_to_unsealed_commitment(sector.comm_d or "")),
        "CommR": (output.comm_r, cid_to_sealed_commitment(sector.comm_r or "")),
        "ticket": (output.ticket, bytes.fromhex(sector.ticket or "")),
        "seed": (output.seed, bytes.fromhex(sector.seed or "")),
    }
    wrong = [name for name, (got, want) in expected.items() if got != want]
    return ", ".join(wrong) if wrong else None


def check_proof(sector: SectorInfo, miner: int, snark: bool, c1_output: str) -> tuple[bool, str]:
    """Check the sector's proof; returns ``(valid, message)`` (never raises on bad data)."""
    try:
        output = SealCommitPhase1Output.from_json(c1_output)
        wrong = _mismatch(output, sector)
        if wrong is not None:
            return False, f"the Commit1 output does not match the sector: {wrong}"
        prover_id = SectorRef(miner, sector.number, resolve_proof(sector.proof).name).prover_id
        check_seal_commit_phase1(output, prover_id, sector.number)
    except (InvalidInputError, VerificationError, ValueError) as exc:
        return False, f"vanilla proofs rejected: {exc}"
    partitions = len(output.vanilla_proofs)
    if not snark:
        return True, (f"SNARK disabled ([Proving] Snark = false): {partitions} partition(s) "
                      "of vanilla proofs verified instead")
    size = len(bytes.fromhex(sector.seal_proof or ""))
    if size != GROTH16_PROOF_BYTES * partitions:
        return False, (f"the seal proof has {size} bytes, {partitions} partition(s) need "
                       f"{GROTH16_PROOF_BYTES * partitions}")
    from sealagent.snark.seal import verify_seal

    try:
        valid = verify_seal(output.registered_proof, output.comm_r, output.comm_d, prover_id,
                            sector.number, output.ticket, output.seed,
                            bytes.fromhex(sector.seal_proof or ""))
    except ProofsError as exc:
        return False, f"cannot verify the SNARK: {exc}"
    if not valid:
        return False, "the SNARK does not verify with the circuit's verifying key"
    return True, (f"vanilla proofs and the {size}-byte SNARK verified ({partitions} "
                  "partition(s))")
