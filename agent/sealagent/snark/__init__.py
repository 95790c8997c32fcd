"""Commit2: a Groth16 SNARK over BLS12-381 of the stacked-DRG PoRep circuit.

Bottom-up: :mod:`~sealagent.snark.cs` (the rank-1 constraint system, shape and witness
modes), the gadgets (:mod:`~sealagent.snark.bits`, :mod:`~sealagent.snark.sha256`,
:mod:`~sealagent.snark.poseidon`, :mod:`~sealagent.snark.merkle`), the circuit
(:mod:`~sealagent.snark.porep`, fed by :mod:`~sealagent.snark.stacked`), Groth16
(:mod:`~sealagent.snark.groth16` with :mod:`~sealagent.snark.ntt` and
:mod:`~sealagent.snark.points`), the parameter files (:mod:`~sealagent.snark.parameters`)
and the proofs-API functions ``seal_commit_phase2`` / ``verify_seal``
(:mod:`~sealagent.snark.seal`).  Pure and synchronous, like :mod:`sealagent.proofs`; it
imports nothing from the services.
"""
