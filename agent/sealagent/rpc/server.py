"""Run an ASGI app with hypercorn's Trio worker inside a nursery.

::

    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, app, "127.0.0.1:0")
        ...                      # server.url == "http://127.0.0.1:41163"
        server.stop()            # graceful: open requests get graceful_timeout to finish

Stopping goes through hypercorn's shutdown trigger, never by cancelling the nursery, so
connections drain and the app's lifespan shutdown runs.
"""

from __future__ import annotations

import functools
import logging
import socket
from dataclasses import dataclass, field
from typing import cast

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.typing import Framework

from sealagent.errors import ConfigError
from sealagent.web.asgi import ASGIApp

DEFAULT_GRACEFUL_TIMEOUT = 5.0
"""Seconds open requests may take to finish after a stop."""


def _config(bind: str, graceful_timeout: float) -> Config:
    config = Config()
    config.bind = [bind]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


class _ReportFirstURL:
    """Adapts hypercorn's ``started(list_of_urls)`` to ``started(url)``."""

    def __init__(self, task_status: trio.TaskStatus[str]) -> None:
        self.task_status = task_status

    def started(self, urls: list[str]) -> None:
        """Called by hypercorn once its sockets listen."""
        self.task_status.started(urls[0])


def check_bind(bind: str) -> None:
    """Check that ``bind`` (``host:port``, ``[v6]:port``) can be listened on.

    Raises ConfigError naming the address otherwise.  (Binding a throwaway socket first
    also keeps hypercorn from leaking the socket of a failed bind.)
    """
    host, sep, port_text = bind.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"bad listen address {bind!r}; expected HOST:PORT")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port_text)))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {bind}: {exc.strerror or exc}") from None


async def serve(app: ASGIApp, bind: str = "127.0.0.1:0", *, shutdown: trio.Event,
                graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
                task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``bind`` (``host:port``; port 0 picks a free one) until ``shutdown``.

    Start it with ``url = await nursery.start(...)``: the bound base URL
    (``http://127.0.0.1:41163``) is reported once the socket listens.  An address that
    cannot be bound raises ConfigError.
    """
    await trio.to_thread.run_sync(check_bind, bind)
    status = cast("trio.TaskStatus[list[str]]", _ReportFirstURL(task_status))
    await hypercorn_serve(cast("Framework", app), _config(bind, graceful_timeout),
                          shutdown_trigger=shutdown.wait, task_status=status)


@dataclass
class ServerHandle:
    """A running server: where it listens and how to stop it."""

    url: str
    shutdown: trio.Event = field(repr=False)

    def stop(self) -> None:
        """Ask the server to stop gracefully (returns at once)."""
        self.shutdown.set()


async def start_server(nursery: trio.Nursery, app: ASGIApp, bind: str = "127.0.0.1:0", *,
                       graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT) -> ServerHandle:
    """Start :func:`serve` in ``nursery``; returns once the server listens."""
    shutdown = trio.Event()
    url = await nursery.start(functools.partial(
        serve, app, bind, shutdown=shutdown, graceful_timeout=graceful_timeout))
    return ServerHandle(url, shutdown)
