"""The agent's durable outbox: task results not yet acknowledged by the manager.

A result (a :class:`~sealagent.protocol.Report`) is written here (fsynced) before the
agent first tries to report it, and is removed only when the manager acknowledges it, so
neither a lost connection nor a crash of the agent loses a finished task.  The reporter
retries every pending report until it is acknowledged; the manager treats reports
idempotently by ``(task_id, attempt)``.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from sealagent.errors import InvalidInputError
from sealagent.protocol import Report
from sealagent.worker.store import JsonDir

_log = structlog.get_logger(__name__)


class Outbox:
    """Pending reports in ``directory``, oldest first."""

    def __init__(self, directory: str | Path) -> None:
        self._records = JsonDir(directory)

    def add(self, report: Report) -> None:
        """Store ``report`` durably (replacing an earlier report of the same attempt)."""
        self._records.put(report.key, {"report": report.to_json(), "queued_at": time.time()})

    def pending(self) -> list[Report]:
        """Every report not yet acknowledged, oldest first (damaged records are skipped)."""
        records = []
        for key, value in self._records.items():
            try:
                records.append((float(value["queued_at"]), key,
                                Report.from_json(value["report"])))
            except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
                _log.error("damaged outbox record skipped", key=key, error=repr(exc))
        return [report for _, _, report in sorted(records, key=lambda r: r[:2])]

    def has(self, task_id: str, attempt: int) -> bool:
        """True when a report of this attempt is waiting to be acknowledged."""
        return self._records.get(f"{task_id}.{attempt}") is not None

    def ack(self, report: Report) -> None:
        """The manager acknowledged ``report``: forget it."""
        self._records.remove(report.key)

    def __len__(self) -> int:
        """Number of pending reports."""
        return len(self._records.items())
