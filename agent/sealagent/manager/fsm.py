"""The sector state machine, as pure logic (Lotus' ``storage/pipeline``).

A sector is an immutable :class:`SectorInfo`.  Two functions drive it:

- :func:`next_step` says what the sector needs now (run a task, draw a ticket, submit a
  message, wait for an epoch or a cooldown, or emit an internal event);
- :func:`apply` returns the sector after an :class:`Event` plus the log line to record.

Neither does I/O or reads a clock: the caller passes ``now`` (wall-clock seconds) and
``head`` (the current epoch).  The happy path is::

    Packing/AddPiece → GetTicket → PreCommit1 → PreCommit2 → PreCommitting → WaitSeed
      → Committing (C1, then C2 or a vanilla-proof check) → SubmitCommit
      → FinalizeSector (Finalize, then the move to long-term storage) → Proving

Failures follow Lotus: a failed step enters its ``...Failed`` state, waits
``MinRetryTime`` (the cooldown) and retries, with Lotus' counters deciding when to fall
back (PC2 failing too often redoes PC1; PC1 failing too often removes the sector;
consecutive proof failures redo PC1).  "Soft" errors (a worker restarted, no space yet)
keep the state and retry the same step after ``SoftErrorRetryWait``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, Final

from sealagent.errors import ManagerError
from sealagent.manager.config import ManagerConfig
from sealagent.phases import (
    AddPieceResult,
    Commit1Result,
    Commit2Result,
    FinalizeResult,
    Phase,
    PhaseResult,
    PreCommit1Result,
    PreCommit2Result,
)
from sealagent.task_kinds import StorageJob, TaskKind

DEAL_SECTOR_PRIORITY: Final = 1024
"""Lotus' scheduling priority for sectors holding deal pieces (CC sectors get 0)."""


class SectorState(enum.StrEnum):
    """Sector states, named as Lotus names them."""

    ADD_PIECE = "AddPiece"
    PACKING = "Packing"
    GET_TICKET = "GetTicket"
    PRECOMMIT1 = "PreCommit1"
    PRECOMMIT2 = "PreCommit2"
    PRECOMMITTING = "PreCommitting"
    WAIT_SEED = "WaitSeed"
    COMMITTING = "Committing"
    SUBMIT_COMMIT = "SubmitCommit"
    FINALIZE_SECTOR = "FinalizeSector"
    PROVING = "Proving"
    ADD_PIECE_FAILED = "AddPieceFailed"
    SEAL_PRECOMMIT1_FAILED = "SealPreCommit1Failed"
    SEAL_PRECOMMIT2_FAILED = "SealPreCommit2Failed"
    PRECOMMIT_FAILED = "PreCommitFailed"
    COMPUTE_PROOF_FAILED = "ComputeProofFailed"
    COMMIT_FAILED = "CommitFailed"
    FINALIZE_FAILED = "FinalizeFailed"
    FAILED_UNRECOVERABLE = "FailedUnrecoverable"
    REMOVING = "Removing"
    REMOVE_FAILED = "RemoveFailed"
    REMOVED = "Removed"

    @property
    def is_failure(self) -> bool:
        """True for the ``...Failed`` states that retry after a cooldown."""
        return self in _FAILURE_RECOVERY

    @property
    def is_terminal(self) -> bool:
        """True where the pipeline has nothing more to do by itself."""
        return self in (SectorState.PROVING, SectorState.REMOVED,
                        SectorState.FAILED_UNRECOVERABLE)


_FAILURE_RECOVERY: Final = {
    SectorState.ADD_PIECE_FAILED, SectorState.SEAL_PRECOMMIT1_FAILED,
    SectorState.SEAL_PRECOMMIT2_FAILED, SectorState.PRECOMMIT_FAILED,
    SectorState.COMPUTE_PROOF_FAILED, SectorState.COMMIT_FAILED,
    SectorState.FINALIZE_FAILED, SectorState.REMOVE_FAILED,
}

_TASK_FAILURE_STATE: Final = {
    Phase.ADD_PIECE: SectorState.ADD_PIECE_FAILED,
    Phase.PRECOMMIT1: SectorState.SEAL_PRECOMMIT1_FAILED,
    Phase.PRECOMMIT2: SectorState.SEAL_PRECOMMIT2_FAILED,
    Phase.COMMIT1: SectorState.COMPUTE_PROOF_FAILED,
    Phase.COMMIT2: SectorState.COMPUTE_PROOF_FAILED,
    Phase.FINALIZE: SectorState.FINALIZE_FAILED,
    StorageJob.MOVE_STORAGE: SectorState.FINALIZE_FAILED,
}


@dataclass(frozen=True)
class SectorPiece:
    """A piece of the sector: padded size, piece CID, and where its bytes come from.

    ``source`` names the staged file of a deal piece; ``None`` is a zero (filler) piece.
    """

    size: int
    cid: str
    deal: bool = False
    source: str | None = None
    added: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"size": self.size, "cid": self.cid, "deal": self.deal,
                "source": self.source, "added": self.added}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SectorPiece:
        """Rebuild from :meth:`to_json`."""
        return cls(int(data["size"]), str(data["cid"]), bool(data["deal"]),
                   data.get("source"), bool(data["added"]))


@dataclass(frozen=True)
class SectorInfo:
    """Everything the pipeline knows about one sector."""

    number: int
    proof: int
    state: SectorState
    pieces: tuple[SectorPiece, ...]
    ticket: str | None = None
    ticket_epoch: int | None = None
    pc1_output: str | None = None
    comm_d: str | None = None
    comm_r: str | None = None
    precommit_epoch: int | None = None
    seed: str | None = None
    seed_epoch: int | None = None
    commit1_done: bool = False
    proof_checked: bool = False
    seal_proof: str | None = None
    commit_epoch: int | None = None
    finalized: bool = False
    """Finalize ran: FinalizeSector now waits for the move to long-term storage."""
    add_piece_fails: int = 0
    precommit1_fails: int = 0
    precommit2_fails: int = 0
    compute_proof_fails: int = 0
    soft_errors: int = 0
    retry_at: float | None = None
    last_error: str | None = None
    task_id: str | None = None

    @property
    def priority(self) -> int:
        """Scheduling priority: deal sectors first (Lotus' ``DealSectorPriority``)."""
        return DEAL_SECTOR_PRIORITY if any(p.deal for p in self.pieces) else 0

    @property
    def next_piece(self) -> int | None:
        """Index of the first piece not yet added, or None."""
        return next((i for i, p in enumerate(self.pieces) if not p.added), None)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (what the database stores)."""
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "pieces":
                value = [p.to_json() for p in value]
            elif name == "state":
                value = str(value)
            data[name] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SectorInfo:
        """Rebuild from :meth:`to_json`; unknown keys are ignored (newer writers)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["state"] = SectorState(known["state"])
        known["pieces"] = tuple(SectorPiece.from_json(p) for p in known["pieces"])
        return cls(**known)


@dataclass(frozen=True)
class Policy:
    """The knobs the state machine reads (from ``[Sealing]`` and ``[Proving]``)."""

    min_retry_time: float = 60.0
    soft_error_retry_wait: float = 5.0
    max_soft_errors: int = 10
    max_add_piece_retries: int = 3
    max_precommit1_retries: int = 3
    max_precommit2_retries: int = 3
    max_compute_proof_retries: int = 2
    seal_randomness_lookback: int = 0
    ticket_expiry_epochs: int = 3780
    precommit_challenge_delay: int = 10
    seed_confidence: int = 6
    snark: bool = True

    @classmethod
    def from_config(cls, config: ManagerConfig) -> Policy:
        """The policy a manager config asks for."""
        s = config.sealing
        return cls(
            min_retry_time=s.min_retry_time,
            soft_error_retry_wait=s.soft_error_retry_wait,
            max_soft_errors=s.max_soft_errors,
            max_add_piece_retries=s.max_add_piece_retries,
            max_precommit1_retries=s.max_precommit1_retries,
            max_precommit2_retries=s.max_precommit2_retries,
            max_compute_proof_retries=s.max_compute_proof_retries,
            seal_randomness_lookback=s.seal_randomness_lookback,
            ticket_expiry_epochs=s.ticket_expiry_epochs,
            precommit_challenge_delay=s.precommit_challenge_delay,
            seed_confidence=s.seed_confidence,
            snark=config.proving.snark,
        )


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of the events; the class name is the event's name in the sector log."""

    @property
    def name(self) -> str:
        """The event name (``TaskSucceeded``)."""
        return type(self).__name__


@dataclass(frozen=True)
class TaskSucceeded(Event):
    """A task of the sector finished with ``result``."""

    result: PhaseResult

    @property
    def phase(self) -> Phase:
        """The phase that finished."""
        return self.result.phase


@dataclass(frozen=True)
class TaskFailed(Event):
    """A task of the sector failed; ``soft`` errors retry the same step."""

    phase: TaskKind
    error: str
    soft: bool = False


@dataclass(frozen=True)
class FilesStored(Event):
    """The finalized files are where they stay (moved to a store path, or no store path
    is attached); ``message`` says where."""

    message: str


@dataclass(frozen=True)
class BadCommitment(Event):
    """PreCommit2's commitments do not match the pieces: redo PreCommit1."""

    error: str


@dataclass(frozen=True)
class PiecesPacked(Event):
    """Every piece is in the sector."""


@dataclass(frozen=True)
class TicketDrawn(Event):
    """A sealing ticket (hex) was drawn at ``epoch``."""

    ticket: str
    epoch: int


@dataclass(frozen=True)
class TicketExpired(Event):
    """The ticket is too old to precommit with: draw a new one."""


@dataclass(frozen=True)
class PreCommitLanded(Event):
    """The precommit message landed at ``epoch``."""

    epoch: int


@dataclass(frozen=True)
class SeedDrawn(Event):
    """The interactive seal seed (hex) was drawn at ``epoch``."""

    seed: str
    epoch: int


@dataclass(frozen=True)
class ProofChecked(Event):
    """The proof (SNARK, or the vanilla proofs with ``Snark = false``) was checked."""

    valid: bool
    message: str


@dataclass(frozen=True)
class CommitLanded(Event):
    """The commit message landed at ``epoch``."""

    epoch: int


@dataclass(frozen=True)
class MessageFailed(Event):
    """Submitting the precommit or commit message failed."""

    error: str


@dataclass(frozen=True)
class RetryDue(Event):
    """The cooldown of a failure state has passed."""


@dataclass(frozen=True)
class RemoveRequested(Event):
    """The operator asked to remove the sector."""


@dataclass(frozen=True)
class FilesRemoved(Event):
    """The sector's files were deleted everywhere."""


@dataclass(frozen=True)
class RemoveFailedEvent(Event):
    """Deleting the sector's files failed."""

    error: str


# --------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """Base of what :func:`next_step` asks the driver to do."""


@dataclass(frozen=True)
class RunTask(Step):
    """Schedule a task of ``phase`` for the sector (unless one is already open)."""

    phase: TaskKind


@dataclass(frozen=True)
class DrawTicket(Step):
    """Draw the sealing randomness at ``epoch`` and apply :class:`TicketDrawn`."""

    epoch: int


@dataclass(frozen=True)
class SubmitPreCommit(Step):
    """Submit the precommit; apply :class:`PreCommitLanded` or :class:`MessageFailed`."""


@dataclass(frozen=True)
class DrawSeed(Step):
    """Draw the seed at ``epoch`` (it is final) and apply :class:`SeedDrawn`."""

    epoch: int


@dataclass(frozen=True)
class CheckProof(Step):
    """Check the SNARK (``snark``) or C1's vanilla proofs; apply :class:`ProofChecked`."""

    snark: bool


@dataclass(frozen=True)
class SubmitCommit(Step):
    """Submit the commit; apply :class:`CommitLanded` or :class:`MessageFailed`."""


@dataclass(frozen=True)
class RemoveFiles(Step):
    """Delete the sector's files; apply :class:`FilesRemoved` or :class:`RemoveFailedEvent`."""


@dataclass(frozen=True)
class WaitUntil(Step):
    """Nothing to do before wall-clock time ``at``."""

    at: float
    reason: str


@dataclass(frozen=True)
class WaitEpoch(Step):
    """Nothing to do before the chain reaches ``epoch``."""

    epoch: int
    reason: str


@dataclass(frozen=True)
class Emit(Step):
    """Apply ``event`` now (a decision the state machine takes by itself)."""

    event: Event


@dataclass(frozen=True)
class Idle(Step):
    """Nothing to do: the sector is in a terminal state."""


def seed_epoch(sector: SectorInfo, policy: Policy) -> int:
    """The epoch the seed is drawn at: precommit epoch + PreCommitChallengeDelay."""
    if sector.precommit_epoch is None:
        raise ManagerError(f"sector {sector.number} has no precommit epoch")
    return sector.precommit_epoch + policy.precommit_challenge_delay


def expected_task(sector: SectorInfo, policy: Policy) -> TaskKind | None:
    """The phase (or storage job) whose task the sector's state runs, or None (no task
    in this state).  FinalizeSector runs Finalize, then the move to long-term storage."""
    state = sector.state
    if state in (SectorState.ADD_PIECE, SectorState.PACKING):
        return Phase.ADD_PIECE if sector.next_piece is not None else None
    if state is SectorState.COMMITTING:
        if not sector.commit1_done:
            return Phase.COMMIT1
        return Phase.COMMIT2 if policy.snark and sector.seal_proof is None else None
    if state is SectorState.FINALIZE_SECTOR and sector.finalized:
        return StorageJob.MOVE_STORAGE
    return _STATE_TASK.get(state)


_STATE_TASK: Final = {
    SectorState.PRECOMMIT1: Phase.PRECOMMIT1,
    SectorState.PRECOMMIT2: Phase.PRECOMMIT2,
    SectorState.FINALIZE_SECTOR: Phase.FINALIZE,
}


def next_step(sector: SectorInfo, policy: Policy, now: float, head: int) -> Step:
    """What the sector needs now."""
    state = sector.state
    if state.is_terminal:
        return Idle()
    if sector.retry_at is not None and now < sector.retry_at:
        why = "cooldown after failure" if state.is_failure else "retrying after soft error"
        return WaitUntil(sector.retry_at, why)
    if state.is_failure:
        return Emit(RetryDue())
    if (state is SectorState.PRECOMMIT1 and sector.ticket_epoch is not None
            and head - sector.ticket_epoch > policy.ticket_expiry_epochs):
        return Emit(TicketExpired())
    phase = expected_task(sector, policy)
    if phase is not None:
        return RunTask(phase)
    if state in (SectorState.ADD_PIECE, SectorState.PACKING):
        return Emit(PiecesPacked())
    if state is SectorState.GET_TICKET:
        return DrawTicket(max(0, head - policy.seal_randomness_lookback))
    if state is SectorState.PRECOMMITTING:
        return SubmitPreCommit()
    if state is SectorState.WAIT_SEED:
        epoch = seed_epoch(sector, policy)
        ready = epoch + policy.seed_confidence
        if head < ready:
            return WaitEpoch(ready, f"seed at epoch {epoch}, final at {ready}")
        return DrawSeed(epoch)
    if state is SectorState.COMMITTING:
        return CheckProof(snark=policy.snark)
    if state is SectorState.SUBMIT_COMMIT:
        return SubmitCommit()
    if state is SectorState.REMOVING:
        return RemoveFiles()
    raise ManagerError(f"sector {sector.number}: no step for state {state}")  # pragma: no cover


# --------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------


def _enter(sector: SectorInfo, state: SectorState, **changes: Any) -> SectorInfo:
    """Move to ``state``; the retry timer is cleared unless ``changes`` sets it."""
    changes.setdefault("retry_at", None)
    return replace(sector, state=state, **changes)


def _fail(sector: SectorInfo, state: SectorState, error: str, now: float,
          policy: Policy) -> SectorInfo:
    """Enter failure ``state``, bump its counter and start the cooldown."""
    counters: dict[str, Any] = {}
    if state is SectorState.ADD_PIECE_FAILED:
        counters["add_piece_fails"] = sector.add_piece_fails + 1
    elif state is SectorState.SEAL_PRECOMMIT1_FAILED:
        counters["precommit1_fails"] = sector.precommit1_fails + 1
        counters["precommit2_fails"] = 0
    elif state is SectorState.SEAL_PRECOMMIT2_FAILED:
        counters["precommit2_fails"] = sector.precommit2_fails + 1
    elif state is SectorState.COMPUTE_PROOF_FAILED:
        counters["compute_proof_fails"] = sector.compute_proof_fails + 1
    return _enter(sector, state, last_error=error, retry_at=now + policy.min_retry_time,
                  task_id=None, soft_errors=0, **counters)


def _piece_state(sector: SectorInfo) -> SectorState:
    """AddPiece while deal pieces are missing, else Packing (fillers)."""
    index = sector.next_piece
    if index is not None and sector.pieces[index].deal:
        return SectorState.ADD_PIECE
    return SectorState.PACKING


def _redo_precommit1(sector: SectorInfo) -> dict[str, Any]:
    """Fields cleared when sealing starts over from PreCommit1."""
    return {"pc1_output": None, "comm_d": None, "comm_r": None, "precommit_epoch": None,
            "seed": None, "seed_epoch": None, "commit1_done": False,
            "proof_checked": False, "seal_proof": None, "compute_proof_fails": 0}


def _recover(sector: SectorInfo, policy: Policy, now: float) -> tuple[SectorInfo, str]:
    """Leave a failure state after its cooldown (Lotus' ``handle...Failed``)."""
    state = sector.state
    if state is SectorState.ADD_PIECE_FAILED:
        if sector.add_piece_fails > policy.max_add_piece_retries:
            return (_enter(sector, SectorState.FAILED_UNRECOVERABLE),
                    f"AddPiece failed {sector.add_piece_fails} times")
        return _enter(sector, _piece_state(sector)), "retrying AddPiece"
    if state is SectorState.SEAL_PRECOMMIT1_FAILED:
        if sector.precommit1_fails > policy.max_precommit1_retries:
            return (_enter(sector, SectorState.REMOVING),
                    f"PreCommit1 failed {sector.precommit1_fails} times: removing the sector")
        return (_enter(sector, SectorState.PRECOMMIT1, **_redo_precommit1(sector)),
                "retrying PreCommit1")
    if state is SectorState.SEAL_PRECOMMIT2_FAILED:
        if sector.precommit2_fails > policy.max_precommit2_retries:
            return (_enter(sector, SectorState.PRECOMMIT1, **_redo_precommit1(sector)),
                    f"PreCommit2 failed {sector.precommit2_fails} times: redoing PreCommit1")
        return _enter(sector, SectorState.PRECOMMIT2), "retrying PreCommit2"
    if state is SectorState.COMPUTE_PROOF_FAILED:
        if sector.compute_proof_fails > policy.max_compute_proof_retries:
            error = f"proof failed {sector.compute_proof_fails} times in a row"
            return (_fail(sector, SectorState.SEAL_PRECOMMIT1_FAILED, error, now, policy),
                    f"{error}: redoing PreCommit1")
        return (_enter(sector, SectorState.COMMITTING, commit1_done=False,
                       seal_proof=None, proof_checked=False), "retrying Committing")
    target = {
        SectorState.PRECOMMIT_FAILED: SectorState.PRECOMMITTING,
        SectorState.COMMIT_FAILED: SectorState.SUBMIT_COMMIT,
        SectorState.FINALIZE_FAILED: SectorState.FINALIZE_SECTOR,
        SectorState.REMOVE_FAILED: SectorState.REMOVING,
    }[state]
    return _enter(sector, target), f"retrying {target}"


def _task_succeeded(sector: SectorInfo, event: TaskSucceeded) -> tuple[SectorInfo, str]:
    """Apply a successful task result."""
    base = replace(sector, task_id=None, soft_errors=0, last_error=None)
    result = event.result
    if isinstance(result, AddPieceResult):
        index = sector.next_piece
        assert index is not None  # checked by _expected_phase
        expected = sector.pieces[index]
        piece = result.piece
        if piece.cid != expected.cid or piece.size != expected.size:
            raise _CommPMismatch(f"piece {index}: worker computed {piece.cid} "
                                 f"({piece.size} bytes), expected {expected.cid} "
                                 f"({expected.size} bytes)")
        pieces = list(sector.pieces)
        pieces[index] = replace(expected, added=True)
        done = replace(base, pieces=tuple(pieces))
        return _enter(done, _piece_state(done)), f"piece {index} added ({expected.cid})"
    if isinstance(result, PreCommit1Result):
        return (_enter(base, SectorState.PRECOMMIT2, pc1_output=result.pc1_output,
                       precommit2_fails=0), "PreCommit1 done")
    if isinstance(result, PreCommit2Result):
        return (_enter(base, SectorState.PRECOMMITTING, comm_d=result.comm_d,
                       comm_r=result.comm_r),
                f"PreCommit2 done: CommD {result.comm_d} CommR {result.comm_r}")
    if isinstance(result, Commit1Result):
        return _enter(base, SectorState.COMMITTING, commit1_done=True), "Commit1 done"
    if isinstance(result, Commit2Result):
        return (_enter(base, SectorState.COMMITTING, seal_proof=result.proof),
                "Commit2 done")
    if isinstance(result, FinalizeResult):
        return (_enter(base, SectorState.FINALIZE_SECTOR, finalized=True),
                "finalized: moving the files to long-term storage")
    raise ManagerError(f"no transition for a {event.phase.label} result")  # pragma: no cover


class _CommPMismatch(Exception):
    """AddPiece wrote a different piece than expected (internal control flow)."""


def still_expected(sector: SectorInfo, task_id: str, phase: TaskKind,
                   policy: Policy) -> bool:
    """Whether the sector still waits for this task: it is the sector's task and its
    phase is the one the sector's state runs under ``policy`` (a configuration change,
    such as ``[Proving] Snark`` turned off, can make a queued task pointless)."""
    return sector.task_id == task_id and expected_task(sector, policy) is phase


def withdraw(sector: SectorInfo, phase: TaskKind, reason: str,
             policy: Policy) -> tuple[SectorInfo, str]:
    """The sector without its task of ``phase``, which it no longer expects (see
    :func:`still_expected`), and the log line saying why and what comes instead."""
    line = f"{phase.label} task withdrawn ({reason})"
    if phase is Phase.COMMIT2 and not policy.snark:
        line += ": [Proving] Snark is off, so C1's vanilla proofs are checked instead"
    elif expected_task(sector, policy) is not phase:
        line += f": {sector.state} does not run {phase.label} under the current configuration"
    return replace(sector, task_id=None), line


def _expected_phase(sector: SectorInfo, phase: TaskKind, policy: Policy) -> None:
    """Refuse a task event that does not belong to the current state."""
    if expected_task(sector, policy) is not phase:
        raise ManagerError(f"sector {sector.number} is in {sector.state}; "
                           f"a {phase.label} result does not belong there")


def apply(sector: SectorInfo, event: Event, policy: Policy,
          now: float) -> tuple[SectorInfo, str]:
    """The sector after ``event`` and the log line describing the transition.

    :raises ManagerError: the event does not belong to the sector's current state.
    """
    state = sector.state
    if isinstance(event, RemoveRequested):
        if state in (SectorState.REMOVING, SectorState.REMOVED):
            raise ManagerError(f"sector {sector.number} is already {state}")
        return _enter(sector, SectorState.REMOVING, task_id=None), "removal requested"
    if isinstance(event, TaskSucceeded | TaskFailed):
        _expected_phase(sector, event.phase, policy)
        if isinstance(event, TaskFailed):
            if event.soft and sector.soft_errors < policy.max_soft_errors:
                return (replace(sector, task_id=None, soft_errors=sector.soft_errors + 1,
                                last_error=event.error,
                                retry_at=now + policy.soft_error_retry_wait),
                        f"{event.phase.label} soft error, retrying: {event.error}")
            error = event.error
            if event.soft:
                error = (f"{sector.soft_errors + 1} temporary errors in a row "
                         f"(MaxSoftErrors = {policy.max_soft_errors}), the last: {error}")
            failed = _TASK_FAILURE_STATE[event.phase]
            return (_fail(sector, failed, error, now, policy),
                    f"{event.phase.label} failed: {error}")
        try:
            return _task_succeeded(sector, event)
        except _CommPMismatch as exc:
            return (_fail(sector, SectorState.ADD_PIECE_FAILED, f"CommP mismatch: {exc}",
                          now, policy), f"AddPiece failed: CommP mismatch: {exc}")
    expected: dict[type[Event], tuple[SectorState, ...]] = {
        RetryDue: tuple(_FAILURE_RECOVERY),
        PiecesPacked: (SectorState.ADD_PIECE, SectorState.PACKING),
        TicketDrawn: (SectorState.GET_TICKET,),
        TicketExpired: (SectorState.PRECOMMIT1,),
        BadCommitment: (SectorState.PRECOMMITTING,),
        PreCommitLanded: (SectorState.PRECOMMITTING,),
        SeedDrawn: (SectorState.WAIT_SEED,),
        ProofChecked: (SectorState.COMMITTING,),
        CommitLanded: (SectorState.SUBMIT_COMMIT,),
        MessageFailed: (SectorState.PRECOMMITTING, SectorState.SUBMIT_COMMIT),
        FilesStored: (SectorState.FINALIZE_SECTOR,),
        FilesRemoved: (SectorState.REMOVING,),
        RemoveFailedEvent: (SectorState.REMOVING,),
    }
    if state not in expected.get(type(event), ()):
        raise ManagerError(f"sector {sector.number} is in {state}; "
                           f"event {event.name} does not belong there")
    return _apply_in_state(sector, event, policy, now)


def _apply_in_state(sector: SectorInfo, event: Event, policy: Policy,
                    now: float) -> tuple[SectorInfo, str]:
    """Apply a non-task event already checked against the state."""
    if isinstance(event, RetryDue):
        return _recover(sector, policy, now)
    if isinstance(event, PiecesPacked):
        if sector.next_piece is not None:
            raise ManagerError(f"sector {sector.number} still has pieces to add")
        return _enter(sector, SectorState.GET_TICKET), "all pieces added"
    if isinstance(event, TicketDrawn):
        return (_enter(sector, SectorState.PRECOMMIT1, ticket=event.ticket,
                       ticket_epoch=event.epoch), f"ticket drawn at epoch {event.epoch}")
    if isinstance(event, TicketExpired):
        return (_enter(sector, SectorState.GET_TICKET, ticket=None, ticket_epoch=None),
                f"ticket from epoch {sector.ticket_epoch} expired")
    if isinstance(event, BadCommitment):
        return (_fail(sector, SectorState.SEAL_PRECOMMIT1_FAILED, event.error, now, policy),
                f"bad commitment: {event.error}")
    if isinstance(event, PreCommitLanded):
        return (_enter(sector, SectorState.WAIT_SEED, precommit_epoch=event.epoch),
                f"precommit landed at epoch {event.epoch}")
    if isinstance(event, SeedDrawn):
        return (_enter(sector, SectorState.COMMITTING, seed=event.seed,
                       seed_epoch=event.epoch), f"seed drawn at epoch {event.epoch}")
    if isinstance(event, ProofChecked):
        if event.valid:
            return (_enter(sector, SectorState.SUBMIT_COMMIT, proof_checked=True,
                           compute_proof_fails=0), event.message)
        return (_fail(sector, SectorState.COMPUTE_PROOF_FAILED, event.message, now, policy),
                f"invalid proof: {event.message}")
    if isinstance(event, CommitLanded):
        return (_enter(sector, SectorState.FINALIZE_SECTOR, commit_epoch=event.epoch),
                f"commit landed at epoch {event.epoch}")
    if isinstance(event, MessageFailed):
        failed = (SectorState.PRECOMMIT_FAILED if sector.state is SectorState.PRECOMMITTING
                  else SectorState.COMMIT_FAILED)
        return _fail(sector, failed, event.error, now, policy), f"message failed: {event.error}"
    if isinstance(event, FilesStored):
        if not sector.finalized:
            raise ManagerError(f"sector {sector.number} is not finalized yet")
        return (_enter(sector, SectorState.PROVING, task_id=None, soft_errors=0,
                       last_error=None), f"{event.message}: sector is proving")
    if isinstance(event, FilesRemoved):
        return _enter(sector, SectorState.REMOVED), "sector files removed"
    assert isinstance(event, RemoveFailedEvent)
    return (_fail(sector, SectorState.REMOVE_FAILED, event.error, now, policy),
            f"removal failed: {event.error}")
