"""Task reports from agents (``Sealing.ReportResult``): validation and meaning.

:func:`parse_report` checks a report object field by field; :func:`result_event` turns an
accepted report into the state machine's event (a malformed result is a failure, Lotus'
error codes ≥ 100 are temporary).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sealagent.errors import InvalidInputError, ManagerError, SealAgentError
from sealagent.manager import fsm
from sealagent.manager.fsm import Event
from sealagent.manager.tasks import TaskRecord
from sealagent.vocab.sectors import FileType

TEMPORARY_ERROR_CODE: Final = 100
"""Lotus' error codes ≥ 100 are temporary: the sector retries the same step."""

FileEntry = tuple[str, FileType]
"""``(path_id, file_type)`` of a sector file on an agent's path."""


@dataclass(frozen=True)
class Report:
    """A validated report."""

    task_id: str
    attempt: int
    ok: bool
    result: dict[str, Any] | None
    error: str | None
    code: int
    declared: tuple[FileEntry, ...]
    """Files the task left on the agent's paths."""
    dropped: tuple[FileEntry, ...]
    """Copies the task removed from other paths (moved away)."""


def _bad(what: str) -> ManagerError:
    return ManagerError(f"report: {what}")


def _file_list(report: Mapping[str, Any], key: str) -> tuple[FileEntry, ...]:
    """A report's ``declared`` or ``dropped`` list of ``{path_id, file_type}``."""
    files = []
    for item in report.get(key) or []:
        if not isinstance(item, dict) or not isinstance(item.get("path_id"), str):
            raise _bad(f"{key} entries are {{path_id, file_type}}")
        try:
            files.append((item["path_id"], FileType.parse(str(item.get("file_type")))))
        except SealAgentError as exc:
            raise _bad(str(exc)) from None
    return tuple(files)


def parse_report(report: Mapping[str, Any]) -> Report:
    """Validate a ``ReportResult`` report object; ManagerError names the bad field."""
    task_id, attempt, ok = report.get("task_id"), report.get("attempt"), report.get("ok")
    if not isinstance(task_id, str) or not task_id:
        raise _bad("task_id must be a non-empty string")
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise _bad("attempt must be an integer")
    if not isinstance(ok, bool):
        raise _bad("ok must be true or false")
    result, error = report.get("result"), report.get("error")
    if result is not None and not isinstance(result, dict):
        raise _bad("result must be an object or null")
    if error is not None and not isinstance(error, str):
        raise _bad("error must be a string or null")
    code = report.get("code", 0)
    if isinstance(code, bool) or not isinstance(code, int):
        raise _bad("code must be an integer")
    return Report(task_id, attempt, ok, result, error, code, _file_list(report, "declared"),
                  _file_list(report, "dropped"))


def result_event(task: TaskRecord, report: Report) -> Event:
    """The state machine event an accepted report means."""
    if not report.ok:
        return fsm.TaskFailed(task.phase, report.error or "task failed without a message",
                              soft=report.code >= TEMPORARY_ERROR_CODE)
    try:
        task.phase.result_type.from_json(report.result)
    except InvalidInputError as exc:
        return fsm.TaskFailed(task.phase, f"malformed {task.phase.label} result: {exc}")
    return fsm.TaskSucceeded(task.phase, dict(report.result or {}))
