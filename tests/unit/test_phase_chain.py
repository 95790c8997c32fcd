"""The phase chain: order, prerequisites, state folded from results, requests built."""

from __future__ import annotations

import pytest

from sealagent.errors import InvalidInputError
from sealagent.phase_chain import (
    PREREQUISITES,
    SEALING_ORDER,
    SealState,
    phase_params,
    phase_request,
)
from sealagent.phases import (
    AddPieceResult,
    Commit1Request,
    Commit1Result,
    Commit2Request,
    FinalizeResult,
    Phase,
    PieceRef,
    PreCommit1Result,
    PreCommit2Result,
    SectorPaths,
    SectorRef,
    UnsealRequest,
)

SECTOR = SectorRef(1000, 3, "StackedDrg2KiBV1_1")
PATHS = SectorPaths.under("/store", SECTOR)
PIECE = PieceRef(2048, "baga6ea4seaq-piece")


def test_prerequisites_follow_the_sealing_order() -> None:
    assert set(PREREQUISITES) == set(Phase)
    for phase in SEALING_ORDER:
        assert PREREQUISITES[phase] == SEALING_ORDER[:SEALING_ORDER.index(phase)][:4]
    assert PREREQUISITES[Phase.UNSEAL] == SEALING_ORDER[:3]


def test_state_folds_typed_results_in_order() -> None:
    state = SealState(ticket="11" * 32, seed="22" * 32)
    for result in (AddPieceResult(PIECE, 0, 2032), PreCommit1Result("{pc1}"),
                   PreCommit2Result("baga-d", "bagb-r"), Commit1Result("{c1}"),
                   FinalizeResult()):
        state = state.after(result)
    assert state == SealState("11" * 32, "22" * 32, (PIECE,), "{pc1}", "baga-d", "bagb-r",
                              "{c1}")


def test_requests_come_from_the_state() -> None:
    state = SealState("11" * 32, "22" * 32, (PIECE,), "{pc1}", "baga-d", "bagb-r", "{c1}")
    c1 = phase_request(Phase.COMMIT1, SECTOR, PATHS, state)
    assert c1 == Commit1Request(SECTOR, PATHS, "11" * 32, "22" * 32, (PIECE,), "baga-d",
                                "bagb-r")
    assert phase_request(Phase.COMMIT2, SECTOR, PATHS, state) == Commit2Request(SECTOR,
                                                                                "{c1}")
    unseal = phase_request(Phase.UNSEAL, SECTOR, PATHS, state, offset=0, size=2032,
                           output="/out")
    assert unseal == UnsealRequest(SECTOR, PATHS, "11" * 32, "baga-d", 0, 2032, "/out")
    assert phase_params(Phase.FINALIZE, SealState()) == {"keep_unsealed": True}


@pytest.mark.parametrize(("phase", "missing"), [
    (Phase.PRECOMMIT1, "ticket"), (Phase.PRECOMMIT2, "PreCommit1 output"),
    (Phase.COMMIT1, "ticket"), (Phase.COMMIT2, "Commit1 output"),
    (Phase.ADD_PIECE, "AddPiece")])
def test_missing_results_are_named(phase: Phase, missing: str) -> None:
    with pytest.raises(InvalidInputError, match=missing):
        phase_params(phase, SealState())
