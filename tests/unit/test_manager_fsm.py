"""The sector state machine: every transition, failure path, retry and cooldown."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sealagent.errors import ManagerError
from sealagent.manager.config import ManagerConfig, ProvingConfig, SealingConfig
from sealagent.manager.fsm import (
    DEAL_SECTOR_PRIORITY,
    BadCommitment,
    CheckProof,
    CommitLanded,
    DrawSeed,
    DrawTicket,
    Emit,
    Event,
    FilesRemoved,
    FilesStored,
    Idle,
    MessageFailed,
    PiecesPacked,
    Policy,
    PreCommitLanded,
    ProofChecked,
    RemoveFailedEvent,
    RemoveFiles,
    RemoveRequested,
    RetryDue,
    RunTask,
    SectorInfo,
    SectorPiece,
    SectorState,
    SeedDrawn,
    SubmitCommit,
    SubmitPreCommit,
    TaskFailed,
    TaskSucceeded,
    TicketDrawn,
    TicketExpired,
    WaitEpoch,
    WaitUntil,
    apply,
    expected_task,
    next_step,
    still_expected,
    withdraw,
)
from sealagent.phases import (
    AddPieceResult,
    Commit1Result,
    Commit2Result,
    FinalizeResult,
    Phase,
    PieceRef,
    PreCommit1Result,
    PreCommit2Result,
)
from sealagent.task_kinds import StorageJob

POLICY = Policy(min_retry_time=60.0, soft_error_retry_wait=5.0)
TICKET = "11" * 32
SEED = "22" * 32
DEAL = SectorPiece(1024, "baga-deal", deal=True, source="piece-1")
FILLER = SectorPiece(1024, "baga-zero")


def cc_sector(state: SectorState = SectorState.PACKING, **changes: Any) -> SectorInfo:
    """A committed-capacity sector with one filler piece."""
    return replace(SectorInfo(number=7, proof=5, state=state, pieces=(FILLER,)), **changes)


def ap_result(piece: SectorPiece) -> TaskSucceeded:
    """A successful AddPiece report for ``piece``."""
    return TaskSucceeded(AddPieceResult(PieceRef(piece.size, piece.cid), 0, 1016))


def step(sector: SectorInfo, now: float = 0.0, head: int = 0,
         policy: Policy = POLICY) -> object:
    """``next_step`` with defaults."""
    return next_step(sector, policy, now, head)


def run(sector: SectorInfo, event: Event, now: float = 0.0,
        policy: Policy = POLICY) -> SectorInfo:
    """``apply`` returning only the sector (and checking a log line came with it)."""
    new, message = apply(sector, event, policy, now)
    assert message
    return new


def test_happy_path_with_snark_reaches_proving() -> None:
    s = SectorInfo(number=1, proof=5, state=SectorState.ADD_PIECE, pieces=(DEAL, FILLER))
    assert s.priority == DEAL_SECTOR_PRIORITY
    assert step(s) == RunTask(Phase.ADD_PIECE)
    s = run(s, ap_result(DEAL))
    assert s.state is SectorState.PACKING and s.pieces[0].added
    assert step(s) == RunTask(Phase.ADD_PIECE)
    s = run(s, ap_result(FILLER))
    assert s.state is SectorState.PACKING
    assert step(s) == Emit(PiecesPacked())
    s = run(s, PiecesPacked())
    assert s.state is SectorState.GET_TICKET
    assert step(s, head=50) == DrawTicket(50)
    s = run(s, TicketDrawn(TICKET, 50))
    assert (s.state, s.ticket, s.ticket_epoch) == (SectorState.PRECOMMIT1, TICKET, 50)
    assert step(s, head=51) == RunTask(Phase.PRECOMMIT1)
    s = run(s, TaskSucceeded(PreCommit1Result("{}")))
    assert (s.state, s.pc1_output) == (SectorState.PRECOMMIT2, "{}")
    assert step(s) == RunTask(Phase.PRECOMMIT2)
    s = run(s, TaskSucceeded(PreCommit2Result("baga-d", "bagb-r")))
    assert (s.state, s.comm_d, s.comm_r) == (SectorState.PRECOMMITTING, "baga-d", "bagb-r")
    assert step(s) == SubmitPreCommit()
    s = run(s, PreCommitLanded(60))
    assert (s.state, s.precommit_epoch) == (SectorState.WAIT_SEED, 60)
    # seed at 60 + 10, final after 6 more epochs
    assert step(s, head=75) == WaitEpoch(76, "seed at epoch 70, final at 76")
    assert step(s, head=76) == DrawSeed(70)
    s = run(s, SeedDrawn(SEED, 70))
    assert (s.state, s.seed, s.seed_epoch) == (SectorState.COMMITTING, SEED, 70)
    assert step(s) == RunTask(Phase.COMMIT1)
    s = run(s, TaskSucceeded(Commit1Result("{}")))
    assert s.commit1_done and s.state is SectorState.COMMITTING
    assert step(s) == RunTask(Phase.COMMIT2)
    s = run(s, TaskSucceeded(Commit2Result("ab" * 192)))
    assert s.seal_proof == "ab" * 192
    assert step(s) == CheckProof(snark=True)
    s = run(s, ProofChecked(True, "seal proof valid"))
    assert s.state is SectorState.SUBMIT_COMMIT and s.proof_checked
    assert step(s) == SubmitCommit()
    s = run(s, CommitLanded(80))
    assert (s.state, s.commit_epoch) == (SectorState.FINALIZE_SECTOR, 80)
    assert step(s) == RunTask(Phase.FINALIZE)
    s = run(s, TaskSucceeded(FinalizeResult()))
    assert (s.state, s.finalized) == (SectorState.FINALIZE_SECTOR, True)
    assert step(s) == RunTask(StorageJob.MOVE_STORAGE)
    s = run(s, FilesStored("sealed, cache moved to long-term storage path st-1"))
    assert (s.state, s.task_id) == (SectorState.PROVING, None)
    assert step(s) == Idle()


def test_snark_disabled_checks_vanilla_proofs_without_commit2() -> None:
    policy = replace(POLICY, snark=False)
    s = cc_sector(SectorState.COMMITTING, seed=SEED, seed_epoch=3)
    assert step(s, policy=policy) == RunTask(Phase.COMMIT1)
    s = run(s, TaskSucceeded(Commit1Result("{}")), policy=policy)
    assert step(s, policy=policy) == CheckProof(snark=False)
    assert expected_task(s, policy) is None
    with pytest.raises(ManagerError, match="does not belong"):
        apply(s, TaskSucceeded(Commit2Result("00")), policy, 0.0)
    s = run(s, ProofChecked(True, "SNARK disabled: vanilla proofs verified"), policy=policy)
    assert s.state is SectorState.SUBMIT_COMMIT


def test_cc_sector_goes_packing_to_ticket() -> None:
    s = run(cc_sector(), ap_result(FILLER))
    assert s.state is SectorState.PACKING
    assert run(s, PiecesPacked()).state is SectorState.GET_TICKET


def test_pieces_packed_refused_while_pieces_are_missing() -> None:
    with pytest.raises(ManagerError, match="still has pieces"):
        apply(cc_sector(), PiecesPacked(), POLICY, 0.0)


def test_ticket_lookback_and_expiry() -> None:
    policy = replace(POLICY, seal_randomness_lookback=5, ticket_expiry_epochs=100)
    assert step(cc_sector(SectorState.GET_TICKET), head=3, policy=policy) == DrawTicket(0)
    assert step(cc_sector(SectorState.GET_TICKET), head=30, policy=policy) == DrawTicket(25)
    s = cc_sector(SectorState.PRECOMMIT1, ticket=TICKET, ticket_epoch=10)
    assert step(s, head=110, policy=policy) == RunTask(Phase.PRECOMMIT1)
    assert step(s, head=111, policy=policy) == Emit(TicketExpired())
    s = run(s, TicketExpired(), policy=policy)
    assert (s.state, s.ticket, s.ticket_epoch) == (SectorState.GET_TICKET, None, None)


def test_add_piece_commp_mismatch_fails_then_retries_then_gives_up() -> None:
    s = SectorInfo(number=2, proof=5, state=SectorState.ADD_PIECE, pieces=(DEAL, FILLER))
    wrong = TaskSucceeded(AddPieceResult(PieceRef(1024, "baga-other"), 0, 1016))
    s = run(s, wrong, now=100.0)
    assert s.state is SectorState.ADD_PIECE_FAILED
    assert s.add_piece_fails == 1 and "CommP mismatch" in (s.last_error or "")
    assert not s.pieces[0].added
    assert step(s, now=159.0) == WaitUntil(160.0, "cooldown after failure")
    assert step(s, now=160.0) == Emit(RetryDue())
    s = run(s, RetryDue(), now=160.0)
    assert s.state is SectorState.ADD_PIECE and s.retry_at is None
    for n in range(2, 5):
        s = run(s, TaskFailed(Phase.ADD_PIECE, "disk full"), now=200.0)
        assert s.add_piece_fails == n
        s = run(s, RetryDue(), now=300.0)
    assert s.add_piece_fails == 4 and s.state is SectorState.FAILED_UNRECOVERABLE
    assert step(s) == Idle()


def test_add_piece_failure_during_packing_returns_to_packing() -> None:
    s = run(cc_sector(), TaskFailed(Phase.ADD_PIECE, "boom"))
    assert run(s, RetryDue(), now=61.0).state is SectorState.PACKING


def test_precommit1_failures_retry_then_remove_sector() -> None:
    s = cc_sector(SectorState.PRECOMMIT1, ticket=TICKET, ticket_epoch=0, precommit2_fails=2)
    s = run(s, TaskFailed(Phase.PRECOMMIT1, "oom"), now=10.0)
    assert s.state is SectorState.SEAL_PRECOMMIT1_FAILED
    assert (s.precommit1_fails, s.precommit2_fails) == (1, 0)
    assert s.retry_at == 70.0
    for n in range(2, 5):
        s = run(s, RetryDue(), now=100.0)
        assert s.state is SectorState.PRECOMMIT1
        s = run(s, TaskFailed(Phase.PRECOMMIT1, "oom"), now=100.0)
        assert s.precommit1_fails == n
    s = run(s, RetryDue(), now=200.0)
    assert s.state is SectorState.REMOVING
    assert step(s) == RemoveFiles()


def test_precommit2_failures_retry_then_redo_precommit1() -> None:
    s = cc_sector(SectorState.PRECOMMIT2, ticket=TICKET, ticket_epoch=0, pc1_output="{}")
    for n in range(1, 4):
        s = run(s, TaskFailed(Phase.PRECOMMIT2, "gpu"), now=0.0)
        assert (s.state, s.precommit2_fails) == (SectorState.SEAL_PRECOMMIT2_FAILED, n)
        s = run(s, RetryDue(), now=60.0)
        assert s.state is SectorState.PRECOMMIT2
    s = run(s, TaskFailed(Phase.PRECOMMIT2, "gpu"), now=0.0)
    s = run(s, RetryDue(), now=60.0)
    assert s.state is SectorState.PRECOMMIT1 and s.pc1_output is None
    s = run(s, TaskSucceeded(PreCommit1Result("{}")))
    assert s.precommit2_fails == 0


def test_bad_commitment_at_precommit_redoes_precommit1() -> None:
    s = cc_sector(SectorState.PRECOMMITTING, ticket=TICKET, ticket_epoch=0,
                  pc1_output="{}", comm_d="x", comm_r="y")
    s = run(s, BadCommitment("CommD mismatch"), now=5.0)
    assert (s.state, s.precommit1_fails) == (SectorState.SEAL_PRECOMMIT1_FAILED, 1)
    s = run(s, RetryDue(), now=65.0)
    assert s.state is SectorState.PRECOMMIT1 and s.comm_d is None and s.comm_r is None


def test_precommit_and_commit_message_failures_retry_submission() -> None:
    s = cc_sector(SectorState.PRECOMMITTING, comm_d="d", comm_r="r")
    s = run(s, MessageFailed("mpool full"), now=0.0)
    assert s.state is SectorState.PRECOMMIT_FAILED
    assert run(s, RetryDue(), now=60.0).state is SectorState.PRECOMMITTING
    s = cc_sector(SectorState.SUBMIT_COMMIT)
    s = run(s, MessageFailed("gas"), now=0.0)
    assert s.state is SectorState.COMMIT_FAILED
    assert run(s, RetryDue(), now=60.0).state is SectorState.SUBMIT_COMMIT


def test_compute_proof_failures_retry_committing_then_redo_precommit1() -> None:
    s = cc_sector(SectorState.COMMITTING, seed=SEED, seed_epoch=1)
    s = run(s, TaskSucceeded(Commit1Result("{}")))
    s = run(s, TaskFailed(Phase.COMMIT2, "cuda error"), now=0.0)
    assert (s.state, s.compute_proof_fails) == (SectorState.COMPUTE_PROOF_FAILED, 1)
    s = run(s, RetryDue(), now=60.0)
    assert s.state is SectorState.COMMITTING and not s.commit1_done
    s = run(s, TaskFailed(Phase.COMMIT1, "missing cache"), now=60.0)
    assert s.compute_proof_fails == 2
    s = run(s, RetryDue(), now=120.0)
    assert s.state is SectorState.COMMITTING
    s = run(s, TaskSucceeded(Commit1Result("{}")))
    s = run(s, TaskSucceeded(Commit2Result("00")))
    s = run(s, ProofChecked(False, "proof does not verify"), now=130.0)
    assert (s.state, s.compute_proof_fails) == (SectorState.COMPUTE_PROOF_FAILED, 3)
    s = run(s, RetryDue(), now=190.0)
    assert s.state is SectorState.SEAL_PRECOMMIT1_FAILED and s.precommit1_fails == 1
    assert s.retry_at == 250.0
    s = run(s, RetryDue(), now=250.0)
    assert s.state is SectorState.PRECOMMIT1 and s.compute_proof_fails == 0


def test_valid_proof_resets_compute_failures() -> None:
    s = cc_sector(SectorState.COMMITTING, commit1_done=True, seal_proof="00",
                  compute_proof_fails=2)
    assert run(s, ProofChecked(True, "ok")).compute_proof_fails == 0


def test_finalize_failure_retries_forever_with_cooldown() -> None:
    s = cc_sector(SectorState.FINALIZE_SECTOR)
    for _ in range(5):
        s = run(s, TaskFailed(Phase.FINALIZE, "no store path"), now=0.0)
        assert s.state is SectorState.FINALIZE_FAILED
        assert step(s, now=30.0) == WaitUntil(60.0, "cooldown after failure")
        s = run(s, RetryDue(), now=60.0)
        assert s.state is SectorState.FINALIZE_SECTOR


def test_a_failed_move_retries_the_move_not_finalize() -> None:
    s = cc_sector(SectorState.FINALIZE_SECTOR, finalized=True, task_id="t-7")
    assert expected_task(s, POLICY) is StorageJob.MOVE_STORAGE
    s = run(s, TaskFailed(StorageJob.MOVE_STORAGE, "no store path has room"), now=0.0)
    assert (s.state, s.task_id, s.last_error) == (SectorState.FINALIZE_FAILED, None,
                                                  "no store path has room")
    s = run(s, RetryDue(), now=60.0)
    assert (s.state, s.finalized) == (SectorState.FINALIZE_SECTOR, True)
    assert step(s, now=60.0) == RunTask(StorageJob.MOVE_STORAGE)
    s = run(s, TaskFailed(StorageJob.MOVE_STORAGE, "holder restarted", soft=True), now=61.0)
    assert (s.state, s.soft_errors) == (SectorState.FINALIZE_SECTOR, 1)


def test_files_stored_needs_a_finalized_sector() -> None:
    with pytest.raises(ManagerError, match="not finalized"):
        apply(cc_sector(SectorState.FINALIZE_SECTOR), FilesStored("x"), POLICY, 0.0)
    with pytest.raises(ManagerError, match="does not belong"):
        apply(cc_sector(SectorState.PROVING, finalized=True), FilesStored("x"), POLICY, 0.0)
    with pytest.raises(ManagerError, match="does not belong"):
        apply(cc_sector(SectorState.FINALIZE_SECTOR),
              TaskFailed(StorageJob.MOVE_STORAGE, "x"), POLICY, 0.0)


def test_an_old_row_without_finalized_reads_as_not_finalized() -> None:
    data = cc_sector(SectorState.FINALIZE_SECTOR).to_json()
    del data["finalized"]
    s = SectorInfo.from_json(data)
    assert not s.finalized and expected_task(s, POLICY) is Phase.FINALIZE


def test_soft_error_keeps_state_and_waits() -> None:
    s = cc_sector(SectorState.PRECOMMIT2, pc1_output="{}", task_id="t-3")
    s = run(s, TaskFailed(Phase.PRECOMMIT2, "worker restarted", soft=True), now=10.0)
    assert s.state is SectorState.PRECOMMIT2
    assert (s.soft_errors, s.precommit2_fails, s.task_id) == (1, 0, None)
    assert step(s, now=12.0) == WaitUntil(15.0, "retrying after soft error")
    assert step(s, now=15.0) == RunTask(Phase.PRECOMMIT2)
    s = run(s, TaskSucceeded(PreCommit2Result("d", "r")))
    assert s.soft_errors == 0 and s.retry_at is None


def test_removal_from_any_state_and_its_failure() -> None:
    for state in (SectorState.PRECOMMIT1, SectorState.PROVING,
                  SectorState.FAILED_UNRECOVERABLE, SectorState.FINALIZE_FAILED):
        s = run(cc_sector(state, task_id="t-1"), RemoveRequested())
        assert s.state is SectorState.REMOVING and s.task_id is None
    s = run(s, RemoveFailedEvent("host down"), now=0.0)
    assert s.state is SectorState.REMOVE_FAILED
    s = run(s, RetryDue(), now=60.0)
    s = run(s, FilesRemoved())
    assert s.state is SectorState.REMOVED and step(s) == Idle()
    with pytest.raises(ManagerError, match="already Removed"):
        apply(s, RemoveRequested(), POLICY, 0.0)


@pytest.mark.parametrize(("state", "event"), [
    (SectorState.PACKING, TicketDrawn(TICKET, 1)),
    (SectorState.PRECOMMIT1, TaskSucceeded(PreCommit2Result("d", "r"))),
    (SectorState.PRECOMMIT2, TaskFailed(Phase.PRECOMMIT1, "x")),
    (SectorState.WAIT_SEED, ProofChecked(True, "")),
    (SectorState.PROVING, RetryDue()),
    (SectorState.GET_TICKET, CommitLanded(3)),
    (SectorState.COMMITTING, SeedDrawn(SEED, 1)),
    (SectorState.PROVING, TaskSucceeded(FinalizeResult())),
])
def test_events_outside_their_state_are_refused(state: SectorState, event: Event) -> None:
    with pytest.raises(ManagerError, match="does not belong"):
        apply(cc_sector(state), event, POLICY, 0.0)


def test_json_round_trip_keeps_everything() -> None:
    s = replace(cc_sector(SectorState.WAIT_SEED), pieces=(DEAL, FILLER), ticket=TICKET,
                ticket_epoch=4, precommit_epoch=9, precommit1_fails=2, retry_at=12.5,
                task_id="t-9")
    assert SectorInfo.from_json(s.to_json()) == s


def test_policy_from_config() -> None:
    config = ManagerConfig(sealing=SealingConfig(min_retry_time=2.0, precommit_challenge_delay=3),
                           proving=ProvingConfig(snark=False))
    policy = Policy.from_config(config)
    assert (policy.min_retry_time, policy.precommit_challenge_delay, policy.snark) == \
        (2.0, 3, False)


def test_soft_errors_in_a_row_are_bounded_and_end_in_a_failure_state() -> None:
    policy = replace(POLICY, max_soft_errors=3)
    s = cc_sector(SectorState.PRECOMMIT2, pc1_output="{}", task_id="t-3")
    missing = "needs its sealed, cache file(s), which are not on this agent"
    for attempt in range(3):
        s, _ = apply(replace(s, task_id=f"t-{attempt}"),
                     TaskFailed(Phase.PRECOMMIT2, missing, soft=True), policy, float(attempt))
        assert s.state is SectorState.PRECOMMIT2 and s.soft_errors == attempt + 1
    s, line = apply(replace(s, task_id="t-9"), TaskFailed(Phase.PRECOMMIT2, missing, soft=True),
                    policy, 10.0)
    assert s.state is SectorState.SEAL_PRECOMMIT2_FAILED
    assert (s.precommit2_fails, s.soft_errors, s.retry_at) == (1, 0, 70.0)
    assert s.last_error == ("4 temporary errors in a row (MaxSoftErrors = 3), the last: "
                            + missing)
    assert line == f"PreCommit2 failed: {s.last_error}"


def test_a_queued_c2_is_withdrawn_once_snark_is_off() -> None:
    s = cc_sector(SectorState.COMMITTING, task_id="t-9", commit1_done=True)
    assert still_expected(s, "t-9", Phase.COMMIT2, replace(POLICY, snark=True))
    off = replace(POLICY, snark=False)
    assert not still_expected(s, "t-9", Phase.COMMIT2, off)
    assert not still_expected(s, "t-8", Phase.COMMIT2, replace(POLICY, snark=True))
    new, line = withdraw(s, Phase.COMMIT2, "task aborted", off)
    assert new.task_id is None and new.state is SectorState.COMMITTING
    assert line == ("Commit2 task withdrawn (task aborted): [Proving] Snark is off, so C1's "
                    "vanilla proofs are checked instead")
    assert next_step(new, off, 0.0, 0) == CheckProof(snark=False)
