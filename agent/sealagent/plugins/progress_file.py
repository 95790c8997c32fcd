"""A phase child's progress reports, as JSON lines in its working directory.

The child appends one line per :class:`~sealagent.phase_progress.ProgressEvent` (already
rate-limited) and flushes it; the parent reads the lines completed since its last read.
A half-written last line is left for the next read; a line that is not an event is
skipped (progress is informative, never a reason to fail a phase).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Final

from sealagent.errors import InvalidInputError
from sealagent.phase_progress import ProgressEvent

PROGRESS_FILE: Final = "progress.jsonl"
"""The child's progress reports, one JSON object a line."""


class ProgressFileWriter:
    """Appends events to a progress file (the child's side)."""

    def __init__(self, path: Path) -> None:
        """Write to ``path`` (created on the first event)."""
        self.path = path
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        """Append ``event`` as one line and flush it."""
        line = json.dumps(event.to_json()) + "\n"
        with self._lock, self.path.open("a") as f:
            f.write(line)


class ProgressFileReader:
    """Reads the events appended to a progress file since the last read (the parent's side)."""

    def __init__(self, path: Path) -> None:
        """Read ``path`` (which need not exist yet)."""
        self.path = path
        self._offset = 0
        self._lock = threading.Lock()

    def read(self) -> list[ProgressEvent]:
        """The events of the lines completed since the last call, in order."""
        with self._lock:
            try:
                with self.path.open("rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except OSError:  # not written yet, or unreadable: progress never fails a phase
                return []
            complete = data[: data.rfind(b"\n") + 1]
            self._offset += len(complete)
        events = []
        for line in complete.splitlines():
            try:
                events.append(ProgressEvent.from_json(json.loads(line)))
            except (ValueError, InvalidInputError):
                continue
        return events
