"""The agent's task journal: the tasks that started executing and have no result yet.

An entry is written (fsynced) just before a phase's child process starts and removed
once its result is in the outbox.  After a crash or a ``kill -9``, the entries name the
tasks that were running: the restarted agent reports them as running when it connects
(so the manager keeps them here instead of scheduling them again) and runs them again on
the same files.  A PreCommit1 then resumes from its last complete layer.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from sealagent.errors import InvalidInputError
from sealagent.protocol import Assignment, SectorFile
from sealagent.worker.store import JsonDir

_log = structlog.get_logger(__name__)


class TaskJournal:
    """Started, unfinished tasks in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self._records = JsonDir(directory)

    def started(self, assignment: Assignment, dropped: tuple[SectorFile, ...] = ()) -> None:
        """Record that ``assignment`` is about to run, with the peer copies it moved here."""
        self._records.put(assignment.task_id, {
            "assignment": assignment.to_json(), "dropped": [d.to_json() for d in dropped]})

    def finished(self, assignment: Assignment) -> None:
        """Forget ``assignment`` (its result is stored, or it was handed back)."""
        current = self._records.get(assignment.task_id)
        if current is not None and current.get("assignment", {}).get(
                "attempt") == assignment.attempt:
            self._records.remove(assignment.task_id)

    def unfinished(self) -> list[tuple[Assignment, tuple[SectorFile, ...]]]:
        """The tasks that were running when the agent last stopped, with what they moved."""
        out = []
        for key, value in self._records.items():
            try:
                dropped = tuple(SectorFile.from_json(d)
                                for d in value.get("dropped") or [])
                out.append((Assignment.from_json(value["assignment"]), dropped))
            except (InvalidInputError, KeyError, TypeError, AttributeError) as exc:
                _log.warning("unreadable journal entry removed", task_id=key, error=repr(exc))
                self._records.remove(key)
        return out
