"""``cpu``: the reference backend.

Every phase is a direct call into :mod:`sealagent.proofs` (pure Python and numpy,
bit-exact with rust-fil-proofs), reading and writing the sector's files where Lotus
keeps them.  It is shaped exactly like a third-party backend: hook implementations only,
registered through the ``sealagent`` entry point.  Commit2 proves with the Groth16 prover of
:mod:`sealagent.snark` (NTTs in Python, MSMs through py-arkworks) and needs the circuit's
parameters (``sealagent params generate``).

PreCommit1, PreCommit2 and Unseal report their progress (:mod:`sealagent.phase_progress`).

The proofs core is reached as ``proofs.<name>``: :mod:`sealagent.proofs` imports a module
(and numpy) only when a phase first uses it, so a phase's child process starts quickly.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import sealagent
from sealagent import hookimpl, proofs
from sealagent.errors import CommitmentMismatchError
from sealagent.phase_progress import phase_progress
from sealagent.phases import (
    AddPieceRequest,
    AddPieceResult,
    BackendInfo,
    Commit1Request,
    Commit1Result,
    Commit2Request,
    Commit2Result,
    FinalizeRequest,
    FinalizeResult,
    PieceRef,
    PreCommit1Request,
    PreCommit1Result,
    PreCommit2Request,
    PreCommit2Result,
    UnsealRequest,
    UnsealResult,
)

if TYPE_CHECKING:
    from sealagent.snark.kernels import ProverKernels

NAME = "cpu"


@hookimpl
def sealagent_backend_info() -> BackendInfo:
    """The reference backend runs everywhere."""
    return BackendInfo(name=NAME, version=sealagent.__version__,
                       description="reference: pure Python + numpy, bit-exact with "
                                   "rust-fil-proofs")


def _pieces(refs: Sequence[PieceRef]) -> list[proofs.PieceInfo]:
    """Wire pieces as the proofs library's :class:`~sealagent.proofs.PieceInfo`."""
    return [proofs.PieceInfo.from_cid(ref.cid, ref.size) for ref in refs]


@contextlib.contextmanager
def _piece_source(path: str | None) -> Iterator[BinaryIO]:
    """The piece's bytes: the file, or an endless stream of zeros for a pledge."""
    with open(path or "/dev/zero", "rb") as source:
        yield source


def addpiece(request: AddPieceRequest,
             pair_hasher: proofs.PairHasher | None = None) -> AddPieceResult:
    """``proofs.add_piece`` into the unsealed file (created, with its directory, if missing).

    ``pair_hasher`` hashes CommP's pairs (default: the reference's, hashlib).
    """
    Path(request.paths.unsealed).parent.mkdir(parents=True, exist_ok=True)
    with _piece_source(request.piece_file) as source:
        out = proofs.add_piece(request.sector.proof, source, request.paths.unsealed,
                               request.piece_size, request.existing_piece_sizes,
                               pair_hasher=pair_hasher or proofs.hash_pairs)
    return AddPieceResult(PieceRef(size=out.piece.size, cid=out.piece.cid), out.offset,
                          out.written)


@hookimpl
def sealagent_addpiece(request: AddPieceRequest) -> AddPieceResult:
    """``proofs.add_piece`` into the unsealed file (created, with its directory, if missing)."""
    return addpiece(request)


def precommit1(request: PreCommit1Request,
               kernels: proofs.SealKernels | None = None) -> PreCommit1Result:
    """``proofs.seal_pre_commit_phase1`` with ``kernels`` (default: the reference's).

    Public, like :func:`precommit2` and :func:`unseal`, so that a backend with faster
    kernels (:mod:`sealagent.proofs.kernels`) answers exactly as ``cpu`` does.
    """
    paths = request.paths
    Path(paths.cache).mkdir(parents=True, exist_ok=True)
    Path(paths.sealed).parent.mkdir(parents=True, exist_ok=True)
    out = proofs.seal_pre_commit_phase1(
        request.sector.proof, paths.cache, paths.unsealed, paths.sealed,
        prover_id=request.sector.prover_id, sector_id=request.sector.number,
        ticket=bytes.fromhex(request.ticket), pieces=_pieces(request.pieces),
        progress=phase_progress(), kernels=kernels or proofs.REFERENCE_KERNELS)
    return PreCommit1Result(json.dumps(out.to_json()))


def precommit2(request: PreCommit2Request,
               kernels: proofs.SealKernels | None = None) -> PreCommit2Result:
    """``proofs.seal_pre_commit_phase2`` with ``kernels``: trees, replica, comm_d, comm_r."""
    pc1 = proofs.PreCommit1Output.from_json(request.pc1_output)
    out = proofs.seal_pre_commit_phase2(pc1, request.paths.cache, request.paths.sealed,
                                        progress=phase_progress(),
                                        kernels=kernels or proofs.REFERENCE_KERNELS)
    return PreCommit2Result(proofs.unsealed_commitment_to_cid(out.comm_d),
                            proofs.sealed_commitment_to_cid(out.comm_r))


def unseal(request: UnsealRequest, kernels: proofs.SealKernels | None = None) -> UnsealResult:
    """``proofs.unseal_range`` with ``kernels``, of the sealed replica into ``request.output``."""
    paths, sector = request.paths, request.sector
    written = proofs.unseal_range(
        sector.proof, paths.cache, paths.sealed, request.output, prover_id=sector.prover_id,
        sector_id=sector.number, comm_d=proofs.cid_to_unsealed_commitment(request.comm_d),
        ticket=bytes.fromhex(request.ticket), offset=request.offset, num_bytes=request.size,
        kernels=kernels or proofs.REFERENCE_KERNELS, progress=phase_progress())
    return UnsealResult(written)


@hookimpl
def sealagent_precommit1(request: PreCommit1Request) -> PreCommit1Result:
    """``proofs.seal_pre_commit_phase1``: labels into the cache directory."""
    return precommit1(request)


@hookimpl
def sealagent_precommit2(request: PreCommit2Request) -> PreCommit2Result:
    """``proofs.seal_pre_commit_phase2``: trees, replica, comm_d and comm_r."""
    return precommit2(request)


@hookimpl
def sealagent_commit1(request: Commit1Request) -> Commit1Result:
    """``proofs.seal_commit_phase1``, for the sector whose commitments the request names."""
    paths, sector = request.paths, request.sector
    out = proofs.seal_commit_phase1(
        sector.proof, paths.cache, paths.sealed, prover_id=sector.prover_id,
        sector_id=sector.number, ticket=bytes.fromhex(request.ticket),
        seed=bytes.fromhex(request.seed), pieces=_pieces(request.pieces))
    if out.comm_d != proofs.cid_to_unsealed_commitment(request.comm_d):
        raise CommitmentMismatchError(f"the sector's comm_d is "
                                      f"{proofs.unsealed_commitment_to_cid(out.comm_d)}, not "
                                      f"{request.comm_d}")
    if out.comm_r != proofs.cid_to_sealed_commitment(request.comm_r):
        raise CommitmentMismatchError(f"the sector's comm_r is "
                                      f"{proofs.sealed_commitment_to_cid(out.comm_r)}, not "
                                      f"{request.comm_r}")
    return Commit1Result(json.dumps(out.to_json()))


def commit2(request: Commit2Request, kernels: ProverKernels | None = None) -> Commit2Result:
    """``seal_commit_phase2`` with the prover's ``kernels`` (default: the reference's).

    Public, like :func:`precommit2`, so that a backend with a faster prover
    (:mod:`sealagent.snark.kernels`) answers exactly as ``cpu`` does.
    """
    from sealagent.snark.kernels import REFERENCE_PROVER_KERNELS
    from sealagent.snark.seal import seal_commit_phase2

    c1 = proofs.SealCommitPhase1Output.from_json(request.c1_output)
    sector = request.sector
    proof = seal_commit_phase2(c1, sector.prover_id, sector.number,
                               kernels=kernels or REFERENCE_PROVER_KERNELS)
    return Commit2Result(proof.hex())


@hookimpl
def sealagent_commit2(request: Commit2Request) -> Commit2Result:
    """``seal_commit_phase2``: the SNARK of the Commit1 output, verified before it returns."""
    return commit2(request)


@hookimpl
def sealagent_unseal(request: UnsealRequest) -> UnsealResult:
    """``proofs.unseal_range`` of the sealed replica into ``request.output``."""
    return unseal(request)


@hookimpl
def sealagent_finalize(request: FinalizeRequest) -> FinalizeResult:
    """``proofs.clear_cache``, and remove the unsealed file unless it is to be kept."""
    removed = [str(p) for p in proofs.clear_cache(request.sector.registered_proof.sector_size,
                                           request.paths.cache)]
    unsealed = Path(request.paths.unsealed)
    if not request.keep_unsealed and unsealed.exists():
        unsealed.unlink()
        removed.append(str(unsealed))
    return FinalizeResult(tuple(removed))
