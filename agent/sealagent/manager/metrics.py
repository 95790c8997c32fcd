"""Prometheus metrics of the manager, on ``GET /debug/metrics``.

A private registry (never the process-global one), refreshed from the service's state
on every scrape:

- ``sealagent_sched_queue_length{task_type}``: tasks waiting in the scheduler queue;
- ``sealagent_sched_open_windows``: scheduling windows the agents hold open;
- ``sealagent_task_duration_seconds{task_type}``: running time of finished tasks;
- ``sealagent_sectors{state}``: sectors per state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from sealagent.manager.history import TaskHistory
from sealagent.web.asgi import Receive, Scope, Send, send_bytes, send_json

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 28800)


@dataclass(frozen=True)
class Snapshot:
    """The numbers a scrape reports."""

    queue: Mapping[str, int]
    open_windows: int
    sectors: Mapping[str, int]


class ManagerMetrics:
    """The manager's metrics and the ASGI app that serves them."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        self.history = TaskHistory()
        self.registry = CollectorRegistry(auto_describe=True)
        self.queue_length = Gauge("sealagent_sched_queue_length",
                                  "Tasks waiting in the scheduler queue", ["task_type"],
                                  registry=self.registry)
        self.open_windows = Gauge("sealagent_sched_open_windows",
                                  "Scheduling windows held open by agents",
                                  registry=self.registry)
        self.task_duration = Histogram("sealagent_task_duration_seconds",
                                       "Running time of finished tasks", ["task_type"],
                                       buckets=DURATION_BUCKETS, registry=self.registry)
        self.sectors = Gauge("sealagent_sectors", "Sectors per state", ["state"],
                             registry=self.registry)

    def observe_task(self, task_type: str, seconds: float, finished_at: float) -> None:
        """Record the running time of a task finished at ``finished_at``."""
        self.task_duration.labels(task_type=task_type).observe(max(0.0, seconds))
        self.history.observe(task_type, seconds, finished_at)

    def render(self) -> bytes:
        """Refresh the gauges and return the text exposition."""
        snap = self._snapshot()
        self.queue_length.clear()
        for task_type, count in snap.queue.items():
            self.queue_length.labels(task_type=task_type).set(count)
        self.open_windows.set(snap.open_windows)
        self.sectors.clear()
        for state, count in snap.sectors.items():
            self.sectors.labels(state=state).set(count)
        return generate_latest(self.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: ``GET /debug/metrics``."""
        if scope["method"] not in ("GET", "HEAD"):
            await send_json(send, 405, {"error": "use GET"})
            return
        await send_bytes(send, 200, self.render(), CONTENT_TYPE_LATEST)
