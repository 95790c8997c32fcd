"""The manager's SQLite store and its durable task queue."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sealagent.errors import DatabaseError, SchedulerError
from sealagent.manager import tasks
from sealagent.manager.db import MIGRATIONS, Database, Transaction
from sealagent.manager.tasks import ReportOutcome, TaskState, check_transition
from sealagent.phases import Phase


async def test_open_migrates_and_uses_wal(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "m.db")
    assert db.schema_version == len(MIGRATIONS)
    mode = await db.query("PRAGMA journal_mode")
    assert mode[0][0] == "wal"
    await db.aclose()
    again = await Database.open(tmp_path / "m.db")
    assert again.schema_version == len(MIGRATIONS)
    await again.aclose()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer"):
        await Database.open(path)


async def test_transaction_commits_or_rolls_back_whole(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "m.db")

    def write_then_fail(tx: Transaction) -> None:
        tx.set_meta("a", 1)
        raise SchedulerError("boom")

    with pytest.raises(SchedulerError):
        await db.transaction(write_then_fail)
    assert await db.transaction(lambda tx: tx.get_meta("a")) is None
    await db.transaction(lambda tx: tx.set_meta("a", {"x": [1, 2]}))
    await db.aclose()
    reopened = await Database.open(tmp_path / "m.db")
    assert await reopened.transaction(lambda tx: tx.get_meta("a")) == {"x": [1, 2]}
    await reopened.aclose()


async def test_sql_errors_become_database_errors(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "m.db")
    with pytest.raises(DatabaseError, match="no such table"):
        await db.query("SELECT * FROM nowhere")
    await db.aclose()


def test_task_transitions() -> None:
    check_transition(TaskState.QUEUED, TaskState.ASSIGNED)
    check_transition(TaskState.ASSIGNED, TaskState.QUEUED)
    check_transition(TaskState.RUNNING, TaskState.RET_WAIT)
    check_transition(TaskState.RET_WAIT, TaskState.RUNNING)
    for old, new in [(TaskState.RUNNING, TaskState.QUEUED), (TaskState.DONE, TaskState.FAILED),
                     (TaskState.QUEUED, TaskState.RUNNING), (TaskState.FAILED, TaskState.QUEUED)]:
        with pytest.raises(SchedulerError, match=f"from {old} to {new}"):
            check_transition(old, new)


async def test_task_life_and_idempotent_reports(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "m.db")
    t = await db.transaction(lambda tx: tasks.insert_task(
        tx, 3, Phase.PRECOMMIT1, 5, 0, {"ticket": "aa"}, 10.0))
    assert (t.task_id, t.state, t.attempt) == ("t-1", TaskState.QUEUED, 0)
    t = await db.transaction(lambda tx: tasks.assign(tx, t, "w1", 11.0))
    assert (t.state, t.attempt, t.worker_id) == (TaskState.ASSIGNED, 1, "w1")
    # the worker vanished before starting: back in the queue, the next assignment is attempt 2
    t = await db.transaction(lambda tx: tasks.requeue(tx, t, 12.0))
    t = await db.transaction(lambda tx: tasks.assign(tx, t, "w2", 13.0))
    assert t.attempt == 2
    t = await db.transaction(lambda tx: tasks.move(tx, t, TaskState.RUNNING, 14.0))
    assert t.started_at == 14.0

    stale, _ = await db.transaction(lambda tx: tasks.record_report(
        tx, "t-1", 1, True, {"pc1_output": "old"}, None, 15.0))
    assert stale is ReportOutcome.STALE
    outcome, done = await db.transaction(lambda tx: tasks.record_report(
        tx, "t-1", 2, True, {"pc1_output": "{}"}, None, 16.0))
    assert outcome is ReportOutcome.ACCEPTED
    assert (done.state, done.result, done.finished_at) == (TaskState.DONE, {"pc1_output": "{}"},
                                                           16.0)
    again, same = await db.transaction(lambda tx: tasks.record_report(
        tx, "t-1", 2, False, None, "late failure", 17.0))
    assert again is ReportOutcome.DUPLICATE and same.state is TaskState.DONE
    with pytest.raises(SchedulerError, match="unknown task"):
        await db.transaction(lambda tx: tasks.record_report(tx, "t-9", 1, True, {}, None, 0.0))
    await db.aclose()

    reopened = await Database.open(tmp_path / "m.db")
    stored = await reopened.transaction(lambda tx: tasks.get_task(tx, "t-1"))
    assert stored == done
    assert await reopened.transaction(tasks.open_tasks) == []
    await reopened.aclose()


async def test_failed_report_and_open_tasks(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "m.db")

    def setup(tx: Transaction) -> None:
        a = tasks.insert_task(tx, 1, Phase.ADD_PIECE, 5, 0, {}, 1.0)
        tasks.insert_task(tx, 2, Phase.ADD_PIECE, 5, 1024, {}, 2.0)
        tasks.assign(tx, a, "w1", 3.0)

    await db.transaction(setup)
    outcome, t = await db.transaction(lambda tx: tasks.record_report(
        tx, "t-1", 1, False, None, "disk full", 4.0))
    assert (outcome, t.state, t.error) == (ReportOutcome.ACCEPTED, TaskState.FAILED, "disk full")
    open_ = await db.transaction(tasks.open_tasks)
    assert [x.task_id for x in open_] == ["t-2"] and open_[0].priority == 1024
    # a report for a task that was never assigned is stale
    outcome, _ = await db.transaction(lambda tx: tasks.record_report(
        tx, "t-2", 0, True, {}, None, 5.0))
    assert outcome is ReportOutcome.STALE
    assert [x.task_id for x in await db.transaction(lambda tx: tasks.sector_tasks(tx, 1))] \
        == ["t-1"]
    await db.aclose()
