"""Serving a private Prometheus registry on ``GET /debug/metrics`` (manager and agents)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, Gauge

from sealagent.web.asgi import Receive, Scope, Send, send_bytes, send_json

FETCH_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600)
"""Histogram buckets (seconds) of sector file fetches."""


def replace_series(gauge: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
    """Replace every series of ``gauge`` with ``values`` (label values → value)."""
    gauge.clear()
    for labels, value in values.items():
        gauge.labels(*labels).set(value)


class MetricsEndpoint:
    """ASGI app answering ``GET``/``HEAD`` with ``render()`` (405 for other methods)."""

    def __init__(self, render: Callable[[], bytes]) -> None:
        self._render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: ``GET /debug/metrics``."""
        if scope["method"] not in ("GET", "HEAD"):
            await send_json(send, 405, {"error": "use GET"})
            return
        await send_bytes(send, 200, self._render(), CONTENT_TYPE_LATEST)
