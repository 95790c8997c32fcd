"""The durable outbox, the task journal, and the JSON record directory under them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealagent.errors import InvalidInputError
from sealagent.protocol import Assignment, ErrorCode, FetchDone, Report, SectorFile
from sealagent.vocab.sectors import FileType
from sealagent.worker.journal import TaskJournal
from sealagent.worker.outbox import Outbox
from sealagent.worker.store import JsonDir


def assignment(task_id: str = "t-1", attempt: int = 1) -> Assignment:
    return Assignment.from_json({
        "task_id": task_id, "attempt": attempt, "task_type": "seal/v0/precommit/1",
        "sector": {"miner": 1000, "number": 7}, "proof": 5,
        "params": {"ticket": "00" * 32, "pieces": []}})


def test_json_dir_roundtrip_and_odd_keys(tmp_path: Path) -> None:
    records = JsonDir(tmp_path / "r")
    records.put("a/b c", {"x": 1})
    records.put("t-2.1", [1, 2])
    assert records.get("a/b c") == {"x": 1}
    assert records.items() == [("a/b c", {"x": 1}), ("t-2.1", [1, 2])]
    assert records.remove("a/b c") is True
    assert records.remove("a/b c") is False
    assert records.get("a/b c") is None
    assert not list((tmp_path / "r").glob("*.tmp"))


def test_json_dir_sets_damaged_records_aside(tmp_path: Path) -> None:
    records = JsonDir(tmp_path)
    records.put("good", 1)
    (tmp_path / "bad.json").write_text("{not json")
    assert records.items() == [("good", 1)]
    assert (tmp_path / "bad.json.bad").exists()


def test_outbox_survives_a_restart_and_keeps_order(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    first = Report("t-1", 1, True, {"pc1_output": "{}"},
                   declared=(SectorFile("p1", FileType.CACHE),))
    second = Report("t-2", 3, False, error="disk full", code=ErrorCode.NO_SPACE)
    outbox.add(first)
    outbox.add(second)
    reopened = Outbox(tmp_path)
    assert reopened.pending() == [first, second]
    assert reopened.has("t-2", 3) and not reopened.has("t-2", 2)
    assert len(reopened) == 2
    reopened.ack(first)
    assert Outbox(tmp_path).pending() == [second]


def test_outbox_report_wire_form() -> None:
    report = Report("t-9", 2, True, {"comm_d": "x"}).with_files(
        (SectorFile("p", FileType.SEALED),), (SectorFile("q", FileType.CACHE),))
    assert report.to_json() == {"task_id": "t-9", "attempt": 2, "ok": True,
                                "result": {"comm_d": "x"}, "error": None, "code": 0,
                                "declared": [{"path_id": "p", "file_type": "sealed"}],
                                "dropped": [{"path_id": "q", "file_type": "cache"}],
                                "fetched": []}
    fetched = FetchDone(FileType.SEALED, "http://h:1/remote/sealed/s-t01000-9", 2048, 0.5)
    again = Report.from_json({**report.to_json(), "fetched": [fetched.to_json()]})
    assert again.fetched == (fetched,)
    assert fetched.to_json() == {"file_type": "sealed", "size": 2048, "seconds": 0.5,
                                 "url": "http://h:1/remote/sealed/s-t01000-9"}
    assert Report.from_json(report.to_json()) == report


def test_outbox_skips_a_damaged_record(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.add(Report("t-1", 1, True))
    JsonDir(tmp_path).put("t-x.1", {"report": {"attempt": 1}, "queued_at": 1.0})
    assert [r.task_id for r in outbox.pending()] == ["t-1"]


def test_journal_tracks_started_tasks(tmp_path: Path) -> None:
    journal = TaskJournal(tmp_path)
    task = assignment()
    moved = (SectorFile("peer-path", FileType.CACHE),)
    journal.started(task, moved)
    journal.started(assignment("t-2"))
    assert [a.task_id for a, _ in TaskJournal(tmp_path).unfinished()] == ["t-1", "t-2"]
    assert TaskJournal(tmp_path).unfinished()[0] == (task, moved)
    journal.finished(assignment("t-1", attempt=2))  # another attempt: kept
    assert len(journal.unfinished()) == 2
    journal.finished(task)
    assert [a.task_id for a, _ in journal.unfinished()] == ["t-2"]


@pytest.mark.parametrize("entry", [{"task_id": "t-5"}, {"assignment": {"task_id": "t-5"}},
                                   ["t-5"]])
def test_journal_removes_entries_it_cannot_read(tmp_path: Path, entry: object) -> None:
    JsonDir(tmp_path).put("t-5", entry)
    assert TaskJournal(tmp_path).unfinished() == []
    assert JsonDir(tmp_path).items() == []


@pytest.mark.parametrize("value", [None, "x", {"task_id": "t"}])
def test_report_from_damaged_json(value: object) -> None:
    with pytest.raises(InvalidInputError):
        Report.from_json(value)
