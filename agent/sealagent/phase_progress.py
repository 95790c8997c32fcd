"""Progress inside a running phase: what a backend reports and where the reports go.

A phase hook that wants its operator to see how far it is calls :func:`report_progress`
(or hands :func:`phase_progress` to the proofs functions as their ``progress`` callback):
``report_progress("layer-3", nodes_done, nodes)``.  Reporting is optional and cheap: with
nobody listening the call does nothing, and a listener installed with
:func:`progress_sink` usually wraps itself in :class:`RateLimited`.

Who listens:

* a phase child (:mod:`sealagent.plugins.child`) appends the reports, rate-limited, as
  JSON lines to a file in its working directory; the parent reads them while the child
  runs (:meth:`~sealagent.plugins.PhaseProcess.progress`);
* ``sealagent bench`` prints them (:class:`ProgressDescriber` turns them into lines with
  the rate);
* the agent writes them into its log with the task.

Stages used by the reference phases: ``parents`` (building the parent cache),
``tree-d``, ``layer-<l>`` (PreCommit1, and Unseal when it labels the key again),
``tree-c`` (the column hashes), ``tree-c-build``, ``encode``, ``tree-r-last``; ``done``
and ``total`` count nodes (or 0/1 and 1/1 for a step without finer progress).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from sealagent.errors import InvalidInputError

ProgressCallback: TypeAlias = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""

DEFAULT_INTERVAL_S: Final = 2.0
"""Shortest time between two reports of one stage that :class:`RateLimited` passes on."""


@dataclass(frozen=True)
class ProgressEvent:
    """One report: ``done`` of ``total`` units of ``stage``, ``elapsed_s`` into the phase."""

    stage: str
    done: int
    total: int
    elapsed_s: float

    @property
    def complete(self) -> bool:
        """True when the stage is finished."""
        return self.done >= self.total

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready ``dict``."""
        return {"stage": self.stage, "done": self.done, "total": self.total,
                "elapsed_s": round(self.elapsed_s, 3)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProgressEvent:
        """Parse :meth:`to_json`'s shape.

        :raises InvalidInputError: a field is missing or of the wrong type.
        """
        try:
            stage, done, total = data["stage"], data["done"], data["total"]
            elapsed = float(data["elapsed_s"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not a progress event: {data!r}") from exc
        if not isinstance(stage, str) or not all(
                isinstance(n, int) and not isinstance(n, bool) for n in (done, total)):
            raise InvalidInputError(f"not a progress event: {data!r}")
        return cls(stage, done, total, elapsed)


class RateLimited:
    """A progress callback that passes on at most one report per stage every ``interval_s``.

    A stage's last report (``done >= total``) and the first report of a new stage always
    pass, so a listener sees every stage end.  Thread-safe.
    """

    def __init__(self, emit: Callable[[ProgressEvent], None], *,
                 interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Pass reports to ``emit`` as :class:`ProgressEvent` (elapsed from now)."""
        self._emit = emit
        self._interval = interval_s
        self._clock = clock
        self._start = clock()
        self._last_stage: str | None = None
        self._last_at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Report ``done`` of ``total`` for ``stage`` (dropped if too soon after the last)."""
        now = self._clock()
        with self._lock:
            new_stage = stage != self._last_stage
            if not (new_stage or done >= total or now - self._last_at >= self._interval):
                return
            self._last_stage, self._last_at = stage, now
        self._emit(ProgressEvent(stage, done, total, now - self._start))


_sink: ProgressCallback | None = None
_sink_lock = threading.Lock()


def phase_progress() -> ProgressCallback | None:
    """The callback a phase should report to, or ``None`` when nobody listens."""
    return _sink


def report_progress(stage: str, done: int, total: int) -> None:
    """Report ``done`` of ``total`` units of ``stage`` of the running phase (or nothing)."""
    sink = _sink
    if sink is not None:
        sink(stage, done, total)


@contextlib.contextmanager
def progress_sink(sink: ProgressCallback) -> Iterator[None]:
    """Send this process' phase progress to ``sink`` while the block runs.

    One sink at a time per process: the phases of a process run one after another.

    :raises InvalidInputError: another sink is installed.
    """
    global _sink
    with _sink_lock:
        if _sink is not None:
            raise InvalidInputError("a phase progress sink is already installed")
        _sink = sink
    try:
        yield
    finally:
        with _sink_lock:
            _sink = None


class ProgressDescriber:
    """Turns a phase's events into lines for people: stage, share done and rate."""

    def __init__(self) -> None:
        """Start with no stage seen."""
        self._previous: ProgressEvent | None = None

    def describe(self, event: ProgressEvent) -> str:
        """``"layer-3 131072/262144 (50 %), 215,000 /s"``.

        The rate is over the time since the stage's previous event (none on its first).
        """
        previous = self._previous
        self._previous = event
        if event.total <= 1:
            return f"{event.stage} {'done' if event.complete else 'started'}"
        share = 100 * event.done / event.total
        line = f"{event.stage} {event.done}/{event.total} ({share:.0f} %)"
        if previous is not None and previous.stage == event.stage:
            seconds = event.elapsed_s - previous.elapsed_s
            if seconds > 0 and event.done > previous.done:
                line += f", {(event.done - previous.done) / seconds:,.0f} /s"
        return line
