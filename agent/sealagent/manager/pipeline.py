"""How the sector pipeline becomes tasks: pieces, selectors, inputs and request params.

Pure functions of a :class:`~sealagent.manager.fsm.SectorInfo`:

- :func:`pledge_pieces` / :func:`deal_pieces`: the pieces of a new sector (a deal piece
  first, then the zero pieces that fill the sector, as Lotus lays them out);
- :func:`selector_for`: which workers may run a phase (Lotus' selectors per call);
- :func:`task_params`: the phase request the agent runs, without its local ``paths``
  (built by the phase chain, :mod:`sealagent.phase_chain`, from :func:`seal_state`);
- :func:`expected_comm_d`: CommD the pieces imply, to check PreCommit2's answer.
"""

from __future__ import annotations

from typing import Any

from sealagent.errors import ManagerError
from sealagent.manager.fsm import SectorInfo, SectorPiece
from sealagent.phase_chain import SealState, phase_params
from sealagent.phases import Phase, PieceRef, SectorRef
from sealagent.proofs.cid import unsealed_commitment_to_cid
from sealagent.proofs.fr32 import to_unpadded_size
from sealagent.proofs.pieces import PieceInfo, fill_pieces, generate_data_commitment
from sealagent.sched.selectors import (
    AllocSelector,
    ExistingSelector,
    MoveSelector,
    Selector,
    TaskSelector,
)
from sealagent.task_kinds import StorageJob, TaskKind
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof
from sealagent.vocab.sectors import FileType


def _piece(info: PieceInfo, *, deal: bool = False, source: str | None = None) -> SectorPiece:
    return SectorPiece(size=info.size, cid=info.cid, deal=deal, source=source)


def pledge_pieces(proof: RegisteredSealProof) -> tuple[SectorPiece, ...]:
    """A committed-capacity sector: zero pieces filling it."""
    return tuple(_piece(p) for p in fill_pieces(proof, []))


def deal_pieces(proof: RegisteredSealProof, piece: PieceInfo,
                source: str) -> tuple[SectorPiece, ...]:
    """A deal sector: ``piece`` (staged as ``source``) then the zero fillers."""
    fillers = fill_pieces(proof, [piece])[1:]
    return (_piece(piece, deal=True, source=source), *(_piece(p) for p in fillers))


def expected_comm_d(proof: int, pieces: tuple[SectorPiece, ...]) -> str:
    """CommD (as a CID) of a sector holding ``pieces``."""
    infos = [PieceInfo.from_cid(p.cid, p.size) for p in pieces]
    return unsealed_commitment_to_cid(generate_data_commitment(resolve_proof(proof), infos))


def selector_for(phase: TaskKind, sector: SectorInfo, *,
                 disallow_remote_finalize: bool) -> Selector:
    """Which workers may run ``phase`` for ``sector`` (Lotus' selector per sealing call).

    A phase that creates files needs room for them (:attr:`Phase.creates`); one that reads
    files needs their holders (:attr:`Phase.reads`), or room to fetch them where Lotus
    allows that.  AddPiece after the first piece writes into the unsealed file in place, so
    only its holders may run it.  Unseal, like Lotus' ``SectorsUnsealPiece``, prefers the
    holders of the sealed replica and its cache, and may fetch them.  The move to long-term
    storage needs a store path with room (Lotus' ``moveSelector``;
    ``DisallowRemoteFinalize`` keeps it on a holder).
    """
    if isinstance(phase, StorageJob):
        return MoveSelector(phase.reads, allow_remote=not disallow_remote_finalize,
                            carries=phase.moves & ~phase.reads)
    if phase is Phase.ADD_PIECE and sector.next_piece:
        return ExistingSelector(FileType.UNSEALED, allow_fetch=False)
    if phase in (Phase.ADD_PIECE, Phase.PRECOMMIT1):
        return AllocSelector(phase.creates)
    if phase in (Phase.PRECOMMIT2, Phase.UNSEAL):
        return ExistingSelector(phase.reads, allow_fetch=True)
    if phase is Phase.COMMIT1:
        return ExistingSelector(phase.reads, allow_fetch=False)
    if phase is Phase.FINALIZE:
        return ExistingSelector(phase.reads, allow_fetch=not disallow_remote_finalize)
    return TaskSelector()


def sector_ref(miner: int, sector: SectorInfo) -> SectorRef:
    """The sector as phase requests name it."""
    return SectorRef(miner=miner, number=sector.number,
                     proof=resolve_proof(sector.proof).name)


def seal_state(sector: SectorInfo, c1_output: str | None = None) -> SealState:
    """What the sector's earlier phases produced, as the phase chain reads it
    (``c1_output``: the Commit1 output, which the manager keeps apart from the sector)."""
    return SealState(ticket=sector.ticket, seed=sector.seed,
                     pieces=tuple(PieceRef(size=p.size, cid=p.cid) for p in sector.pieces),
                     pc1_output=sector.pc1_output, comm_d=sector.comm_d,
                     comm_r=sector.comm_r, c1_output=c1_output)


def task_params(phase: TaskKind, miner: int, sector: SectorInfo, *,
                piece_url: str | None = None, c1_output: str | None = None,
                allow_to: list[str] | None = None) -> dict[str, Any]:
    """The request of ``phase`` for ``sector`` as JSON, without ``paths``.

    AddPiece carries ``piece_url`` (None for a zero piece) instead of ``piece_file``;
    the other phases' fields come from the phase chain
    (:func:`~sealagent.phase_chain.phase_params`).  A storage job carries the sector and
    ``allow_to``: the storage groups the files may move to (None: any).
    """
    params: dict[str, Any] = {"sector": sector_ref(miner, sector).to_json()}
    if isinstance(phase, StorageJob):
        params["allow_to"] = allow_to
        return params
    if phase is not Phase.ADD_PIECE:
        params.update(phase_params(phase, seal_state(sector, c1_output)))
        return params
    index = sector.next_piece
    if index is None:
        raise ManagerError(f"sector {sector.number} has no piece left to add")
    params.update(piece_size=to_unpadded_size(sector.pieces[index].size),
                  existing_piece_sizes=[to_unpadded_size(p.size) for p in sector.pieces[:index]],
                  piece_url=piece_url)
    return params
