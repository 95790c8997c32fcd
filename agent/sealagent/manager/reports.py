"""Task reports from agents (``Sealing.ReportResult``): validation and meaning.

:func:`parse_report` reads a :class:`~sealagent.protocol.Report` (and
:func:`parse_move` a :class:`~sealagent.protocol.FileMove`); :func:`result_event`
turns an accepted report into the state machine's event (a malformed result is a
failure, Lotus' error codes ≥ 100 are temporary): a phase's result becomes
:class:`~sealagent.manager.fsm.TaskSucceeded`, a finished move to long-term storage
:class:`~sealagent.manager.fsm.FilesStored`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sealagent.errors import InvalidInputError, ManagerError
from sealagent.manager import fsm
from sealagent.manager.fsm import Event
from sealagent.protocol import FileMove, Report, is_temporary
from sealagent.task_kinds import MoveResult, StorageJob, TaskKind


def parse_report(data: Mapping[str, Any]) -> Report:
    """Validate a ``ReportResult`` report object; ManagerError names the bad field."""
    try:
        return Report.from_json(dict(data))
    except InvalidInputError as exc:
        raise ManagerError(f"report: {exc}") from None


def parse_move(data: Mapping[str, Any]) -> FileMove:
    """Validate a ``StorageDeclare`` object; ManagerError names the bad field."""
    try:
        return FileMove.from_json(dict(data))
    except InvalidInputError as exc:
        raise ManagerError(f"storage declaration: {exc}") from None


def result_event(phase: TaskKind, report: Report) -> Event:
    """The state machine event an accepted report of a ``phase`` task means."""
    if not report.ok:
        return fsm.TaskFailed(phase, report.error or "task failed without a message",
                              soft=is_temporary(report.code))
    try:
        if isinstance(phase, StorageJob):
            return fsm.FilesStored(MoveResult.from_json(report.result).describe())
        return fsm.TaskSucceeded(phase.result_type.from_json(report.result))
    except InvalidInputError as exc:
        return fsm.TaskFailed(phase, f"malformed {phase.label} result: {exc}")
