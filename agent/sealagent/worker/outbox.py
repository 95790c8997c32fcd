"""The agent's durable outbox: task results not yet acknowledged by the manager.

A result is written here (fsynced) before the agent first tries to report it, and is
removed only when the manager acknowledges it, so neither a lost connection nor a crash
of the agent loses a finished task.  The reporter retries every pending report until it
is acknowledged; the manager treats reports idempotently by ``(task_id, attempt)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import structlog

from sealagent.errors import StorageError
from sealagent.worker.store import JsonDir

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Declared:
    """A sector file in a storage path: one a task left here, or one moved away from a
    peer's path."""

    path_id: str
    file_type: str

    def to_json(self) -> dict[str, str]:
        """The protocol object ``{"path_id", "file_type"}``."""
        return {"path_id": self.path_id, "file_type": self.file_type}


ERROR_UNKNOWN: Final = 0
ERROR_TEMPORARY: Final = 100
ERROR_WORKER_RESTARTED: Final = 101
ERROR_NO_SPACE: Final = 102
"""Lotus' error codes: 100 and above are temporary (the sector retries the same step)."""


@dataclass(frozen=True)
class Report:
    """The outcome of one task attempt, as ``Sealing.ReportResult`` takes it."""

    task_id: str
    attempt: int
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    code: int = ERROR_UNKNOWN
    declared: tuple[Declared, ...] = ()
    dropped: tuple[Declared, ...] = ()
    """Peer copies this task moved here (they were deleted at the peer)."""

    @property
    def key(self) -> str:
        """``<task_id>.<attempt>``."""
        return f"{self.task_id}.{self.attempt}"

    def to_json(self) -> dict[str, Any]:
        """The report object of the protocol."""
        return {"task_id": self.task_id, "attempt": self.attempt, "ok": self.ok,
                "result": self.result, "error": self.error, "code": self.code,
                "declared": [d.to_json() for d in self.declared],
                "dropped": [d.to_json() for d in self.dropped]}

    def with_files(self, declared: tuple[Declared, ...],
                   dropped: tuple[Declared, ...]) -> Report:
        """The same report, declaring ``declared`` and ``dropped``."""
        return replace(self, declared=declared, dropped=dropped)

    @classmethod
    def from_json(cls, data: Any) -> Report:
        """Read back :meth:`to_json` output; StorageError when it is damaged."""
        try:
            declared, dropped = (
                tuple(Declared(str(d["path_id"]), str(d["file_type"]))
                      for d in data.get(key) or [])
                for key in ("declared", "dropped"))
            return cls(str(data["task_id"]), int(data["attempt"]), bool(data["ok"]),
                       data.get("result"), data.get("error"), int(data.get("code", 0)),
                       tuple(declared), tuple(dropped))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StorageError(f"damaged outbox record: {exc!r}") from None


class Outbox:
    """Pending reports in ``directory``, oldest first."""

    def __init__(self, directory: str | Path) -> None:
        self._records = JsonDir(directory)

    def add(self, report: Report) -> None:
        """Store ``report`` durably (replacing an earlier report of the same attempt)."""
        self._records.put(report.key, {"report": report.to_json(), "queued_at": time.time()})

    def pending(self) -> list[Report]:
        """Every report not yet acknowledged, oldest first."""
        records = []
        for key, value in self._records.items():
            try:
                records.append((float(value["queued_at"]), key,
                                Report.from_json(value["report"])))
            except (KeyError, TypeError, ValueError, StorageError) as exc:
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
