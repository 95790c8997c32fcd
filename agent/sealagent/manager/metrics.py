"""Prometheus metrics of the manager, on ``GET /debug/metrics``.

A private registry (never the process-global one).  Gauges are refreshed from the
service's state on every scrape, from counts the manager keeps up to date as things
change (a scrape costs O(workers + paths + running tasks + states), not O(sectors));
counters and histograms are updated as events happen:

- ``sealagent_sched_queue_length{task_type}``: tasks waiting in the scheduler queue;
- ``sealagent_sched_open_windows``: scheduling windows the agents hold open;
- ``sealagent_task_duration_seconds{task_type}``: running time of finished tasks;
- ``sealagent_sectors{state}``: sectors per state;
- ``sealagent_sector_oldest_age_seconds{state}``: how long the sector longest in each
  state has been there (a stuck sector shows here);
- ``sealagent_worker_up{worker_id,host,name}``: 1 for a connected agent, 0 for one
  the manager lost;
- ``sealagent_worker_last_seen_timestamp_seconds{worker_id,host,name}``: its last
  heartbeat (Unix seconds);
- ``sealagent_worker_running_tasks{worker_id,host,task_type}``: tasks running there;
- ``sealagent_worker_task_failures_total{worker_id,host,task_type}``: task attempts that
  failed there (an error report, a lost worker, an abort);
- ``sealagent_worker_task_retries_total{worker_id,host,task_type}``: attempts after the
  first given to it;
- ``sealagent_fetch_bytes_total{file_type}`` and
  ``sealagent_fetch_duration_seconds{file_type}``: sector files the agents fetched for
  their tasks, as their reports say;
- ``sealagent_storage_capacity_bytes{path_id}``, ``sealagent_storage_available_bytes``
  (free space less reservations), ``sealagent_storage_reserved_bytes`` and
  ``sealagent_storage_healthy``: every indexed storage path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from sealagent.manager.history import TaskHistory
from sealagent.web.asgi import Receive, Scope, Send
from sealagent.web.prometheus import FETCH_BUCKETS, MetricsEndpoint, replace_series

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 28800)


@dataclass(frozen=True)
class WorkerSample:
    """One agent the manager knows."""

    worker_id: str
    host: str
    name: str
    up: bool
    last_seen: float
    running: Mapping[str, int]
    """Task type → tasks running there."""


@dataclass(frozen=True)
class PathSample:
    """One indexed storage path."""

    path_id: str
    capacity: int
    available: int
    reserved: int
    healthy: bool


@dataclass(frozen=True)
class Snapshot:
    """The numbers a scrape reports."""

    queue: Mapping[str, int]
    open_windows: int
    sectors: Mapping[str, int]
    oldest_age: Mapping[str, float] = field(default_factory=dict)
    workers: Sequence[WorkerSample] = ()
    paths: Sequence[PathSample] = ()


def _gauge(name: str, text: str, labels: Sequence[str],
           registry: CollectorRegistry) -> Gauge:
    return Gauge(name, text, list(labels), registry=registry)


WORKER_LABELS = ("worker_id", "host", "name")
TASK_LABELS = ("worker_id", "host", "task_type")


class ManagerMetrics:
    """The manager's metrics and the ASGI app that serves them.

    :param snapshot: the numbers of a scrape.
    :param host: the host name of a worker id (for the counters' labels).
    """

    def __init__(self, snapshot: Callable[[], Snapshot],
                 host: Callable[[str], str] = lambda worker_id: worker_id[:8]) -> None:
        self._snapshot = snapshot
        self._host = host
        self.history = TaskHistory()
        self._endpoint = MetricsEndpoint(self.render)
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.queue_length = _gauge("sealagent_sched_queue_length",
                                   "Tasks waiting in the scheduler queue", ["task_type"],
                                   registry)
        self.open_windows = _gauge("sealagent_sched_open_windows",
                                   "Scheduling windows held open by agents", [], registry)
        self.task_duration = Histogram("sealagent_task_duration_seconds",
                                       "Running time of finished tasks", ["task_type"],
                                       buckets=DURATION_BUCKETS, registry=registry)
        self.sectors = _gauge("sealagent_sectors", "Sectors per state", ["state"], registry)
        self.oldest_age = _gauge("sealagent_sector_oldest_age_seconds",
                                 "Seconds the sector longest in each state has been there",
                                 ["state"], registry)
        self.worker_up = _gauge("sealagent_worker_up",
                                "1 for a connected agent, 0 for one the manager lost",
                                WORKER_LABELS, registry)
        self.worker_seen = _gauge("sealagent_worker_last_seen_timestamp_seconds",
                                  "When the agent was last heard from (Unix seconds)",
                                  WORKER_LABELS, registry)
        self.worker_running = _gauge("sealagent_worker_running_tasks",
                                     "Tasks running on the agent", TASK_LABELS, registry)
        self.failures = Counter("sealagent_worker_task_failures",
                                "Task attempts that failed on the agent", list(TASK_LABELS),
                                registry=registry)
        self.retries = Counter("sealagent_worker_task_retries",
                               "Task attempts after the first given to the agent",
                               list(TASK_LABELS), registry=registry)
        self.fetch_bytes = Counter("sealagent_fetch_bytes", "Bytes of sector files agents "
                                   "fetched for their tasks", ["file_type"], registry=registry)
        self.fetch_duration = Histogram("sealagent_fetch_duration_seconds",
                                        "Time agents took to fetch a sector file",
                                        ["file_type"], buckets=FETCH_BUCKETS,
                                        registry=registry)
        self.path_capacity = _gauge("sealagent_storage_capacity_bytes",
                                    "Capacity of the storage path", ["path_id"], registry)
        self.path_available = _gauge("sealagent_storage_available_bytes",
                                     "Free space of the storage path less reservations",
                                     ["path_id"], registry)
        self.path_reserved = _gauge("sealagent_storage_reserved_bytes",
                                    "Space reserved in the storage path for running tasks",
                                    ["path_id"], registry)
        self.path_healthy = _gauge("sealagent_storage_healthy",
                                   "1 while the storage path reports in time", ["path_id"],
                                   registry)

    def observe_task(self, task_type: str, seconds: float, finished_at: float) -> None:
        """Record the running time of a task finished at ``finished_at``."""
        self.task_duration.labels(task_type=task_type).observe(max(0.0, seconds))
        self.history.observe(task_type, seconds, finished_at)

    def observe_failure(self, worker_id: str, task_type: str) -> None:
        """A task attempt failed on ``worker_id``."""
        self.failures.labels(worker_id, self._host(worker_id), task_type).inc()

    def observe_retry(self, worker_id: str, task_type: str) -> None:
        """A later attempt of a task went to ``worker_id``."""
        self.retries.labels(worker_id, self._host(worker_id), task_type).inc()

    def observe_fetch(self, file_type: str, size: int, seconds: float) -> None:
        """An agent fetched ``size`` bytes of ``file_type`` in ``seconds``."""
        self.fetch_bytes.labels(file_type=file_type).inc(max(0, size))
        self.fetch_duration.labels(file_type=file_type).observe(max(0.0, seconds))

    def render(self) -> bytes:
        """Refresh the gauges and return the text exposition."""
        snap = self._snapshot()
        replace_series(self.queue_length, {(k,): v for k, v in snap.queue.items()})
        self.open_windows.set(snap.open_windows)
        replace_series(self.sectors, {(k,): v for k, v in snap.sectors.items()})
        replace_series(self.oldest_age, {(k,): v for k, v in snap.oldest_age.items()})
        replace_series(self.worker_up, {(w.worker_id, w.host, w.name): int(w.up)
                                        for w in snap.workers})
        replace_series(self.worker_seen, {(w.worker_id, w.host, w.name): w.last_seen
                                          for w in snap.workers})
        replace_series(self.worker_running, {(w.worker_id, w.host, t): n
                                             for w in snap.workers
                                             for t, n in w.running.items()})
        for gauge, name in ((self.path_capacity, "capacity"),
                            (self.path_available, "available"),
                            (self.path_reserved, "reserved"), (self.path_healthy, "healthy")):
            replace_series(gauge, {(p.path_id,): int(getattr(p, name)) for p in snap.paths})
        return generate_latest(self.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: ``GET /debug/metrics``."""
        await self._endpoint(scope, receive, send)
