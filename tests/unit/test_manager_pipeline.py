"""From sectors to tasks: pieces, selectors, request params; and the proof check."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sealagent.manager.fsm import FilesStored, SectorInfo, SectorState, TaskFailed
from sealagent.manager.pipeline import (
    deal_pieces,
    expected_comm_d,
    pledge_pieces,
    selector_for,
    task_params,
)
from sealagent.manager.proof_check import check_proof
from sealagent.manager.reports import result_event
from sealagent.phases import Phase, SectorPaths
from sealagent.proofs.pieces import generate_piece_commitment, zero_piece
from sealagent.protocol import ErrorCode, Report
from sealagent.sched.selectors import AllocSelector, ExistingSelector, MoveSelector, TaskSelector
from sealagent.task_kinds import MoveResult, StorageJob
from sealagent.testing import SealState, SectorInputs, seal_with_reference
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType

PROOF = RegisteredSealProof.StackedDrg2KiBV1_1
TICKET, SEED = "11" * 32, "22" * 32


def test_pledge_is_one_zero_piece_and_a_deal_piece_gets_fillers() -> None:
    [zero] = pledge_pieces(PROOF)
    assert (zero.size, zero.cid, zero.deal) == (2048, zero_piece(2048).cid, False)
    piece = generate_piece_commitment(bytes(range(254)), 254)
    pieces = deal_pieces(PROOF, piece, "s-t01000-4")
    assert [(p.size, p.deal, p.source) for p in pieces] == [
        (256, True, "s-t01000-4"), (256, False, None), (512, False, None),
        (1024, False, None)]
    assert expected_comm_d(int(PROOF), pledge_pieces(PROOF)) == zero_piece(2048).cid


def test_selectors_follow_lotus() -> None:
    sector = SectorInfo(number=1, proof=5, state=SectorState.PACKING,
                        pieces=pledge_pieces(PROOF))
    assert selector_for(Phase.ADD_PIECE, sector, disallow_remote_finalize=False) == \
        AllocSelector(FileType.UNSEALED)
    more = replace(sector, pieces=(replace(sector.pieces[0], added=True), sector.pieces[0]))
    assert selector_for(Phase.ADD_PIECE, more, disallow_remote_finalize=False) == \
        ExistingSelector(FileType.UNSEALED, allow_fetch=False)
    assert selector_for(Phase.PRECOMMIT1, sector, disallow_remote_finalize=False) == \
        AllocSelector(FileType.SEALED | FileType.CACHE)
    assert selector_for(Phase.PRECOMMIT2, sector, disallow_remote_finalize=False) == \
        ExistingSelector(FileType.SEALED | FileType.CACHE, allow_fetch=True)
    assert selector_for(Phase.COMMIT1, sector, disallow_remote_finalize=False) == \
        ExistingSelector(FileType.SEALED | FileType.CACHE, allow_fetch=False)
    assert selector_for(Phase.COMMIT2, sector, disallow_remote_finalize=False) == TaskSelector()
    assert selector_for(Phase.FINALIZE, sector, disallow_remote_finalize=True) == \
        ExistingSelector(FileType.CACHE, allow_fetch=False)
    assert selector_for(Phase.FINALIZE, sector, disallow_remote_finalize=False) == \
        ExistingSelector(FileType.CACHE, allow_fetch=True)
    stored = FileType.SEALED | FileType.CACHE
    assert selector_for(StorageJob.MOVE_STORAGE, sector, disallow_remote_finalize=False) == \
        MoveSelector(stored, allow_remote=True, carries=FileType.UNSEALED)
    assert selector_for(StorageJob.MOVE_STORAGE, sector, disallow_remote_finalize=True) == \
        MoveSelector(stored, allow_remote=False, carries=FileType.UNSEALED)


def test_a_move_report_becomes_files_stored_or_a_failure() -> None:
    moved = MoveResult((FileType.SEALED, FileType.CACHE), "st-1", "/store", 4096, ("/seal",))
    ok = result_event(StorageJob.MOVE_STORAGE, Report("t-1", 1, True, moved.to_json()))
    assert ok == FilesStored("sealed, cache moved to long-term storage path st-1 (/store) "
                             "from /seal (4 KiB)")
    bad = result_event(StorageJob.MOVE_STORAGE, Report("t-1", 1, True, {"path_id": 3}))
    assert isinstance(bad, TaskFailed) and "malformed MoveStorage result" in bad.error
    full = result_event(StorageJob.MOVE_STORAGE,
                        Report("t-1", 1, False, error="no room", code=ErrorCode.NO_SPACE))
    assert full == TaskFailed(StorageJob.MOVE_STORAGE, "no room", soft=True)


@pytest.mark.parametrize("phase", [Phase.ADD_PIECE, Phase.PRECOMMIT1, Phase.PRECOMMIT2,
                                   Phase.COMMIT1, Phase.COMMIT2, Phase.FINALIZE])
def test_params_make_valid_phase_requests(phase: Phase) -> None:
    sector = SectorInfo(number=9, proof=5, state=SectorState.PACKING,
                        pieces=pledge_pieces(PROOF), ticket=TICKET, seed=SEED,
                        pc1_output="{}", comm_d="baga-d", comm_r="bagb-r")
    params = task_params(phase, 1000, sector, piece_url=None, c1_output="{}")
    params.pop("piece_url", None)
    if phase is Phase.ADD_PIECE:
        assert (params["piece_size"], params["existing_piece_sizes"]) == (2032, [])
    if "paths" in {f for f in phase.request_type.__dataclass_fields__}:
        params["paths"] = SectorPaths("/u", "/s", "/c").to_json()
    request = phase.request_type.from_json(params)
    assert request.sector.number == 9 and request.sector.miner == 1000


def test_move_params_name_the_sector_and_the_groups_it_may_go_to() -> None:
    sector = SectorInfo(number=9, proof=5, state=SectorState.FINALIZE_SECTOR,
                        pieces=pledge_pieces(PROOF), finalized=True)
    params = task_params(StorageJob.MOVE_STORAGE, 1000, sector, allow_to=["cold"])
    assert params == {"sector": {"miner": 1000, "number": 9, "proof": PROOF.name},
                      "allow_to": ["cold"]}
    assert task_params(StorageJob.MOVE_STORAGE, 1000, sector)["allow_to"] is None


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[SectorInputs, SealState]:
    """A 2 KiB sector sealed up to Commit1 with the reference backend."""
    root = tmp_path_factory.mktemp("sealed")
    inputs = SectorInputs.create(root / "inputs")
    state = seal_with_reference(inputs, root / "store", (Phase.ADD_PIECE, Phase.PRECOMMIT1,
                                                         Phase.PRECOMMIT2, Phase.COMMIT1))
    return inputs, state


def sector_of(inputs: SectorInputs, state: SealState) -> SectorInfo:
    """The manager's record of the sealed sector."""
    pieces = tuple(replace(pledge_pieces(PROOF)[0], size=p.size, cid=p.cid, added=True)
                   for p in state.pieces)
    return SectorInfo(number=inputs.sector.number, proof=5, state=SectorState.COMMITTING,
                      pieces=pieces, ticket=inputs.ticket, seed=inputs.seed,
                      comm_d=state.comm_d, comm_r=state.comm_r, commit1_done=True)


def test_vanilla_proofs_are_checked_against_the_sector(
        sealed: tuple[SectorInputs, SealState]) -> None:
    inputs, state = sealed
    sector, c1 = sector_of(inputs, state), state.c1_output or ""
    valid, message = check_proof(sector, 1000, False, c1)
    assert valid and "SNARK disabled" in message and "1 partition(s)" in message
    valid, message = check_proof(replace(sector, seed="33" * 32), 1000, False, c1)
    assert not valid and "seed" in message
    valid, message = check_proof(replace(sector, number=2), 1000, False, c1)
    assert not valid and "replica_id" in message
    valid, message = check_proof(sector, 1001, False, c1)
    assert not valid
    data = json.loads(c1)
    proofs = data["vanilla_proofs"]["StackedDrg2KiBV1"][0]
    proofs[0]["comm_d_proofs"]["data"]["Single"]["leaf"][0] ^= 1
    valid, message = check_proof(sector, 1000, False, json.dumps(data))
    assert not valid and message.startswith("vanilla proofs rejected")
    assert not check_proof(sector, 1000, False, "{not json")[0]


def test_with_snark_the_proof_is_verified_with_the_verifying_key(
        sealed: tuple[SectorInputs, SealState], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    inputs, state = sealed
    monkeypatch.setenv("FIL_PROOFS_PARAMETER_CACHE", str(tmp_path))
    sector = replace(sector_of(inputs, state), seal_proof="ab" * 192)
    valid, message = check_proof(sector, 1000, True, state.c1_output or "")
    assert not valid and "cannot verify the SNARK" in message and "params generate" in message
    valid, message = check_proof(replace(sector, seal_proof="ab" * 10), 1000, True,
                                 state.c1_output or "")
    assert not valid and "10 bytes" in message
