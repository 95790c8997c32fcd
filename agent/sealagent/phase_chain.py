"""The sealing phase chain: order, prerequisites, and each request built from a sector's state.

Pure functions and values, shared by the manager's pipeline
(:mod:`sealagent.manager.pipeline`), the backend test kit (:mod:`sealagent.testing`) and
``sealagent bench`` (:mod:`sealagent.benchmark`):

- :data:`SEALING_ORDER`: the phases a sector goes through, in order;
- :data:`PREREQUISITES`: the phases that must have run before each phase;
- :class:`SealState`: what a sector's earlier phases produced (typed results folded in
  with :meth:`SealState.after`) plus its randomness;
- :func:`phase_params` / :func:`phase_request`: the request of a phase from that state.

AddPiece is the one phase whose request comes from outside the chain (the piece's bytes
and size): build :class:`~sealagent.phases.AddPieceRequest` directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from sealagent.errors import InvalidInputError
from sealagent.phases import (
    AddPieceResult,
    Commit1Result,
    Phase,
    PhaseRequest,
    PhaseResult,
    PieceRef,
    PreCommit1Result,
    PreCommit2Result,
    SectorPaths,
    SectorRef,
)

SEALING_ORDER: Final = (Phase.ADD_PIECE, Phase.PRECOMMIT1, Phase.PRECOMMIT2, Phase.COMMIT1,
                        Phase.COMMIT2, Phase.FINALIZE)
"""The phases that seal a sector, in order."""

PREREQUISITES: Final[dict[Phase, tuple[Phase, ...]]] = {
    Phase.ADD_PIECE: (),
    Phase.PRECOMMIT1: (Phase.ADD_PIECE,),
    Phase.PRECOMMIT2: (Phase.ADD_PIECE, Phase.PRECOMMIT1),
    Phase.COMMIT1: (Phase.ADD_PIECE, Phase.PRECOMMIT1, Phase.PRECOMMIT2),
    Phase.COMMIT2: (Phase.ADD_PIECE, Phase.PRECOMMIT1, Phase.PRECOMMIT2, Phase.COMMIT1),
    Phase.UNSEAL: (Phase.ADD_PIECE, Phase.PRECOMMIT1, Phase.PRECOMMIT2),
    Phase.FINALIZE: (Phase.ADD_PIECE, Phase.PRECOMMIT1, Phase.PRECOMMIT2, Phase.COMMIT1),
}
"""The phases whose results (and files) a phase needs, in the order they run."""


@dataclass(frozen=True)
class SealState:
    """A sector's randomness and what its earlier phases produced."""

    ticket: str | None = None
    seed: str | None = None
    pieces: tuple[PieceRef, ...] = ()
    pc1_output: str | None = None
    comm_d: str | None = None
    comm_r: str | None = None
    c1_output: str | None = None

    def after(self, result: PhaseResult) -> SealState:
        """The state once ``result`` is known."""
        if isinstance(result, AddPieceResult):
            return dataclasses.replace(self, pieces=(*self.pieces, result.piece))
        if isinstance(result, PreCommit1Result):
            return dataclasses.replace(self, pc1_output=result.pc1_output)
        if isinstance(result, PreCommit2Result):
            return dataclasses.replace(self, comm_d=result.comm_d, comm_r=result.comm_r)
        if isinstance(result, Commit1Result):
            return dataclasses.replace(self, c1_output=result.c1_output)
        return self


def _need(value: str | None, what: str) -> str:
    """``value``, or an error saying which earlier phase is missing."""
    if value is None:
        raise InvalidInputError(f"{what} is not known yet; run the earlier phases first")
    return value


def _pieces(state: SealState) -> list[dict[str, Any]]:
    return [p.to_json() for p in state.pieces]


def phase_params(phase: Phase, state: SealState) -> dict[str, Any]:
    """The fields of ``phase``'s request that come from ``state`` (JSON, without
    ``sector`` and ``paths``).

    Unseal's range and output are the caller's (pass them to :func:`phase_request`).

    :raises InvalidInputError: ``state`` lacks what the phase needs, or the phase is
        AddPiece (its request does not come from the chain).
    """
    if phase is Phase.PRECOMMIT1:
        return {"ticket": _need(state.ticket, "the ticket"), "pieces": _pieces(state)}
    if phase is Phase.PRECOMMIT2:
        return {"pc1_output": _need(state.pc1_output, "the PreCommit1 output")}
    if phase is Phase.COMMIT1:
        return {"ticket": _need(state.ticket, "the ticket"),
                "seed": _need(state.seed, "the seed"), "pieces": _pieces(state),
                "comm_d": _need(state.comm_d, "comm_d"), "comm_r": _need(state.comm_r, "comm_r")}
    if phase is Phase.COMMIT2:
        return {"c1_output": _need(state.c1_output, "the Commit1 output")}
    if phase is Phase.UNSEAL:
        return {"ticket": _need(state.ticket, "the ticket"),
                "comm_d": _need(state.comm_d, "comm_d")}
    if phase is Phase.FINALIZE:
        return {"keep_unsealed": True}
    raise InvalidInputError(f"a {phase.label} request does not come from earlier results")


def phase_request(phase: Phase, sector: SectorRef, paths: SectorPaths, state: SealState,
                  **extra: Any) -> PhaseRequest:
    """The request of ``phase`` for ``sector`` stored at ``paths`` (``extra``: fields of
    the caller's, such as Unseal's ``offset``, ``size`` and ``output``)."""
    data = {"sector": sector.to_json(), **phase_params(phase, state), **extra}
    return with_paths(phase, data, paths)


def with_paths(phase: Phase, data: dict[str, Any], paths: SectorPaths) -> PhaseRequest:
    """``phase``'s request from its JSON ``data``, with ``paths`` if the phase takes them.

    :raises InvalidInputError: ``data`` does not fit the phase.
    """
    request_type = phase.request_type
    if "paths" in {f.name for f in dataclasses.fields(request_type)}:
        data = {**data, "paths": paths.to_json()}
    return request_type.from_json(data)
