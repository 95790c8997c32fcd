"""Prometheus metrics of an agent, on its ``GET /debug/metrics`` (no token, as the
manager's):

- ``sealagent_agent_fetch_bytes_total{file_type}`` and
  ``sealagent_agent_fetch_duration_seconds{file_type}``: sector files this agent
  downloaded while preparing tasks;
- ``sealagent_agent_tasks{task_type,stage}``: tasks it holds (``assigned``,
  ``preparing``, ``prepared``, ``running``);
- ``sealagent_agent_storage_capacity_bytes{path_id}`` and
  ``sealagent_agent_storage_available_bytes{path_id}``: its storage paths;
- ``sealagent_agent_enabled``: 1 while it takes new tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from sealagent.protocol import FetchDone
from sealagent.web.asgi import Receive, Scope, Send
from sealagent.web.prometheus import FETCH_BUCKETS, MetricsEndpoint, replace_series


@dataclass(frozen=True)
class AgentSnapshot:
    """The numbers a scrape of an agent reports."""

    enabled: bool
    tasks: Mapping[tuple[str, ...], int]
    """(task type, stage) → tasks held."""
    paths: Mapping[str, tuple[int, int]]
    """Path id → (capacity, available) bytes."""


class AgentMetrics:
    """An agent's metrics and the ASGI app that serves them."""

    def __init__(self, snapshot: Callable[[], AgentSnapshot]) -> None:
        self._snapshot = snapshot
        self._endpoint = MetricsEndpoint(self.render)
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.fetch_bytes = Counter("sealagent_agent_fetch_bytes",
                                   "Bytes of sector files fetched for tasks", ["file_type"],
                                   registry=registry)
        self.fetch_duration = Histogram("sealagent_agent_fetch_duration_seconds",
                                        "Time a sector file's fetch took", ["file_type"],
                                        buckets=FETCH_BUCKETS, registry=registry)
        self.tasks = Gauge("sealagent_agent_tasks", "Tasks the agent holds, by stage",
                           ["task_type", "stage"], registry=registry)
        self.capacity = Gauge("sealagent_agent_storage_capacity_bytes",
                              "Capacity of the agent's storage path", ["path_id"],
                              registry=registry)
        self.available = Gauge("sealagent_agent_storage_available_bytes",
                               "Free space of the agent's storage path", ["path_id"],
                               registry=registry)
        self.enabled = Gauge("sealagent_agent_enabled", "1 while the agent takes new tasks",
                             registry=registry)

    def observe_fetch(self, done: FetchDone) -> None:
        """Count a finished download."""
        file_type = done.file_type.dir_name
        self.fetch_bytes.labels(file_type=file_type).inc(max(0, done.size))
        self.fetch_duration.labels(file_type=file_type).observe(max(0.0, done.seconds))

    def render(self) -> bytes:
        """Refresh the gauges and return the text exposition."""
        snap = self._snapshot()
        self.enabled.set(int(snap.enabled))
        replace_series(self.tasks, snap.tasks)
        replace_series(self.capacity, {(p,): c for p, (c, _) in snap.paths.items()})
        replace_series(self.available, {(p,): a for p, (_, a) in snap.paths.items()})
        return generate_latest(self.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: ``GET /debug/metrics``."""
        await self._endpoint(scope, receive, send)
