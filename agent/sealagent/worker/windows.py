"""Scheduling windows: the agent keeps two long-polls open at the manager.

Each window is a loop: ask ``Sealing.RequestWindow`` (the manager answers when its
scheduler filled the window, or with no tasks after ``wait`` seconds), hand the tasks to
the agent, and wait until every one of them has left the window (entered the preparing
or the executing window) before asking again.  Two windows (Lotus' ``SchedWindows``)
keep work queued behind what runs without letting one agent hoard the queue.

The loops run until cancelled.  A poll cut off that way may have been filled already;
the manager does not lose those tasks: it answers the windows of a replaced session
empty, and queues again a task the agent does not list as held (the stopping agent
re-registers with what it holds).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final, NoReturn

import structlog
import trio

from sealagent.errors import InvalidInputError, RPCError, RPCTransportError
from sealagent.protocol import Assignment
from sealagent.sched.windows import SCHED_WINDOWS
from sealagent.worker.link import ManagerLink

DEFAULT_WAIT: Final = 30.0
"""Seconds the manager may hold a window request open."""
CALL_MARGIN: Final = 15.0
"""Extra seconds a long-poll call may take beyond the wait it asks for."""
RETRY_INTERVAL: Final = 1.0

Dispatch = Callable[[Sequence[Assignment]], Awaitable[None]]
"""Takes a window's tasks; returns once all of them left the window."""

_log = structlog.get_logger(__name__)


class WindowLoop:
    """Keeps ``windows`` scheduling windows open and feeds their tasks to ``dispatch``."""

    def __init__(self, link: ManagerLink, dispatch: Dispatch, *, windows: int = SCHED_WINDOWS,
                 wait: float = DEFAULT_WAIT, retry_interval: float = RETRY_INTERVAL) -> None:
        self.link = link
        self.dispatch = dispatch
        self.windows = windows
        self.wait = wait
        self.retry_interval = retry_interval
        self.open_requests = 0
        """Window requests in flight now."""

    async def run(self) -> None:
        """Run the window loops; returns only when cancelled."""
        async with trio.open_nursery() as nursery:
            for index in range(self.windows):
                nursery.start_soon(self._loop, index)

    async def _loop(self, index: int) -> NoReturn:
        while True:
            tasks = await self._request(index)
            if tasks:
                _log.info("window filled", window=index, tasks=[t.key for t in tasks])
                await self.dispatch(tasks)

    async def _request(self, index: int) -> list[Assignment]:
        self.open_requests += 1
        try:
            answer = await self.link.call("Sealing.RequestWindow", self.wait,
                                          timeout=self.wait + CALL_MARGIN)
        except RPCTransportError as exc:
            _log.warning("window request failed", window=index, error=str(exc))
            await trio.sleep(self.retry_interval)
            return []
        except RPCError as exc:
            _log.error("window request refused", window=index, error=str(exc))
            await trio.sleep(self.retry_interval)
            return []
        finally:
            self.open_requests -= 1
        tasks = []
        for item in (answer or {}).get("tasks", []) if isinstance(answer, dict) else []:
            try:
                tasks.append(Assignment.from_json(item))
            except InvalidInputError as exc:
                _log.error("assignment ignored", error=str(exc))
        return tasks
