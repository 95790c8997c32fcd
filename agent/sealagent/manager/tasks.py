"""The durable task queue: one row per task, its assignment and its outcome.

A task is one phase of one sector, or a storage job such as the move to long-term
storage (:mod:`sealagent.task_kinds`).  It moves through::

    queued → assigned → prepared → running → done | failed
                ↘ (worker lost before starting) back to queued
    running → ret-wait (worker lost) → running (re-attached) | failed (timed out)

Each assignment bumps ``attempt``; reports are idempotent by ``(task_id, attempt)``: a
report for an older attempt is stale, a repeat of an accepted report is a duplicate, and
both are acknowledged without changing anything.

The functions here take a :class:`~sealagent.manager.db.Transaction`, so the service can
record a result and move the sector's state machine in one transaction.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from dataclasses import dataclass, replace
from typing import Any, Final

from sealagent.errors import SchedulerError
from sealagent.manager.db import Transaction
from sealagent.task_kinds import TaskKind, parse_kind


class TaskState(enum.StrEnum):
    """Where a task is; ``sealing jobs`` shows these."""

    QUEUED = "queued"
    ASSIGNED = "assigned"
    PREPARED = "prepared"
    RUNNING = "running"
    RET_WAIT = "ret-wait"
    DONE = "done"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """True for ``done`` and ``failed``."""
        return self in (TaskState.DONE, TaskState.FAILED)

    @property
    def is_started(self) -> bool:
        """True once the worker began executing it (it may hold a result)."""
        return self in (TaskState.RUNNING, TaskState.RET_WAIT)


_ALLOWED: Final[dict[TaskState, frozenset[TaskState]]] = {
    TaskState.QUEUED: frozenset({TaskState.ASSIGNED, TaskState.FAILED}),
    TaskState.ASSIGNED: frozenset({TaskState.PREPARED, TaskState.RUNNING, TaskState.QUEUED,
                                   TaskState.DONE, TaskState.FAILED}),
    TaskState.PREPARED: frozenset({TaskState.RUNNING, TaskState.QUEUED, TaskState.DONE,
                                   TaskState.FAILED}),
    TaskState.RUNNING: frozenset({TaskState.RET_WAIT, TaskState.DONE, TaskState.FAILED}),
    TaskState.RET_WAIT: frozenset({TaskState.RUNNING, TaskState.DONE, TaskState.FAILED}),
    TaskState.DONE: frozenset(),
    TaskState.FAILED: frozenset(),
}


def check_transition(old: TaskState, new: TaskState) -> None:
    """Raise :class:`SchedulerError` unless a task may move from ``old`` to ``new``."""
    if new not in _ALLOWED[old]:
        raise SchedulerError(f"a task cannot go from {old} to {new}")


class ReportOutcome(enum.StrEnum):
    """What a result report did."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True)
class TaskRecord:
    """One task as stored."""

    task_id: str
    seq: int
    sector: int
    phase: TaskKind
    """The phase or storage job the task runs."""
    proof: int
    priority: int
    params: dict[str, Any]
    state: TaskState
    attempt: int
    worker_id: str | None
    created_at: float
    state_since: float
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TaskRecord:
        """Build from a ``tasks`` row."""
        return cls(
            task_id=row["task_id"], seq=row["seq"], sector=row["sector"],
            phase=parse_kind(row["task_type"]), proof=row["proof"], priority=row["priority"],
            params=json.loads(row["params"]), state=TaskState(row["state"]),
            attempt=row["attempt"], worker_id=row["worker_id"],
            created_at=row["created_at"], state_since=row["state_since"],
            started_at=row["started_at"], finished_at=row["finished_at"],
            result=None if row["result"] is None else json.loads(row["result"]),
            error=row["error"],
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (without params and result, which may be large)."""
        return {"task_id": self.task_id, "sector": self.sector,
                "task_type": self.phase.task_type, "short": self.phase.short,
                "proof": self.proof, "priority": self.priority, "state": str(self.state),
                "attempt": self.attempt, "worker_id": self.worker_id,
                "created_at": self.created_at, "state_since": self.state_since,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "error": self.error}


def insert_task(tx: Transaction, sector: int, phase: TaskKind, proof: int, priority: int,
                params: dict[str, Any], now: float) -> TaskRecord:
    """Create a queued task."""
    row = tx.one("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM tasks")
    seq = int(row["next"]) if row is not None else 1
    task = TaskRecord(task_id=f"t-{seq}", seq=seq, sector=sector, phase=phase, proof=proof,
                      priority=priority, params=params, state=TaskState.QUEUED, attempt=0,
                      worker_id=None, created_at=now, state_since=now)
    tx.execute(
        "INSERT INTO tasks (task_id, seq, sector, task_type, proof, priority, params, state,"
        " attempt, worker_id, created_at, state_since) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (task.task_id, seq, sector, phase.task_type, proof, priority, json.dumps(params),
         str(task.state), 0, None, now, now))
    return task


def get_task(tx: Transaction, task_id: str) -> TaskRecord | None:
    """The task, or None."""
    row = tx.one("SELECT * FROM tasks WHERE task_id = ?", (task_id,))
    return None if row is None else TaskRecord.from_row(row)


def open_tasks(tx: Transaction) -> list[TaskRecord]:
    """Every task not yet done or failed, oldest first."""
    rows = tx.query("SELECT * FROM tasks WHERE state NOT IN ('done', 'failed') ORDER BY seq")
    return [TaskRecord.from_row(r) for r in rows]


def sector_tasks(tx: Transaction, sector: int) -> list[TaskRecord]:
    """Every task of one sector, oldest first."""
    rows = tx.query("SELECT * FROM tasks WHERE sector = ? ORDER BY seq", (sector,))
    return [TaskRecord.from_row(r) for r in rows]


def _write(tx: Transaction, task: TaskRecord) -> None:
    """Persist the mutable columns of ``task``."""
    tx.execute(
        "UPDATE tasks SET state = ?, attempt = ?, worker_id = ?, state_since = ?,"
        " started_at = ?, finished_at = ?, result = ?, error = ? WHERE task_id = ?",
        (str(task.state), task.attempt, task.worker_id, task.state_since, task.started_at,
         task.finished_at, None if task.result is None else json.dumps(task.result),
         task.error, task.task_id))


def move(tx: Transaction, task: TaskRecord, state: TaskState, now: float,
         **changes: Any) -> TaskRecord:
    """Move ``task`` to ``state`` (validated), apply ``changes`` and persist it."""
    check_transition(task.state, state)
    updated = replace(task, state=state, state_since=now, **changes)
    if state is TaskState.RUNNING and updated.started_at is None:
        updated = replace(updated, started_at=now)
    if state.is_final:
        updated = replace(updated, finished_at=now)
    _write(tx, updated)
    return updated


def assign(tx: Transaction, task: TaskRecord, worker_id: str, now: float) -> TaskRecord:
    """Give a queued task to a worker: a new attempt."""
    return move(tx, task, TaskState.ASSIGNED, now, worker_id=worker_id,
                attempt=task.attempt + 1, started_at=None)


def requeue(tx: Transaction, task: TaskRecord, now: float) -> TaskRecord:
    """Put a task that never started back into the queue."""
    return move(tx, task, TaskState.QUEUED, now, worker_id=None)


def fail(tx: Transaction, task: TaskRecord, error: str, now: float) -> TaskRecord:
    """End a task with an error (abort, lost worker)."""
    return move(tx, task, TaskState.FAILED, now, error=error)


def record_report(tx: Transaction, task_id: str, attempt: int, ok: bool,
                  result: dict[str, Any] | None, error: str | None,
                  now: float) -> tuple[ReportOutcome, TaskRecord]:
    """Record a worker's result report, idempotently by ``(task_id, attempt)``.

    :raises SchedulerError: no such task.
    """
    task = get_task(tx, task_id)
    if task is None:
        raise SchedulerError(f"unknown task {task_id!r}")
    if attempt != task.attempt:
        return ReportOutcome.STALE, task
    if task.state.is_final:
        return ReportOutcome.DUPLICATE, task
    if task.state is TaskState.QUEUED:
        return ReportOutcome.STALE, task
    if ok:
        return ReportOutcome.ACCEPTED, move(tx, task, TaskState.DONE, now,
                                            result=result or {}, error=None)
    return ReportOutcome.ACCEPTED, move(tx, task, TaskState.FAILED, now,
                                        error=error or "task failed without a message")
