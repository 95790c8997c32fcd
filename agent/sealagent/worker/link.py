"""The agent's link to the manager: registration, session, heartbeats.

* :meth:`ManagerLink.connect` registers the agent (``Sealing.WorkerConnect``) and keeps
  retrying every :data:`RETRY_INTERVAL` while the manager cannot be reached.  A refused
  token is not retried: :class:`~sealagent.errors.AuthError` propagates with a message
  saying so.
* :meth:`ManagerLink.call` makes a call under the current session; when the manager no
  longer knows the session (it restarted, or declared this agent lost) it reconnects once
  and repeats the call.
* :meth:`ManagerLink.run_heartbeats` sends the fresh worker info every interval and hands
  the task ids the manager wants aborted to a callback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

import structlog
import trio

from sealagent.errors import AuthError, RPCError, RPCTransportError, SessionError
from sealagent.rpc.client import RPCClient

RETRY_INTERVAL: Final = 1.0
"""Seconds between attempts to reach the manager."""

InfoSource = Callable[[bool], Awaitable[dict[str, Any]]]
"""The agent's WorkerInfo; with ``True`` (connecting) it lists the sector files held."""
_log = structlog.get_logger(__name__)


class ManagerLink:
    """One agent's session at the manager."""

    def __init__(self, client: RPCClient, info: InfoSource, *,
                 retry_interval: float = RETRY_INTERVAL) -> None:
        """
        :param client: the JSON-RPC client for the manager (``MINER_API_INFO``).
        :param info: builds the WorkerInfo to send (fresh inventory, running tasks).
        """
        self.client = client
        self.info = info
        self.retry_interval = retry_interval
        self.worker_id: str | None = None
        self.session: str | None = None
        self.connected = trio.Event()
        self._connecting = trio.Lock()

    async def connect(self) -> None:
        """Register with the manager, retrying until it answers.

        :raises AuthError: the manager refused this agent's token.
        """
        async with self._connecting:
            failures = 0
            while True:
                try:
                    answer = await self.client.call("Sealing.WorkerConnect",
                                                    [await self.info(True)])
                    self.worker_id = str(answer["worker_id"])
                    self.session = str(answer["session"])
                except AuthError as exc:
                    raise AuthError(f"the manager at {self.client.url} refused this "
                                    f"agent's token: {exc}") from None
                except RPCTransportError as exc:
                    failures += 1
                    if failures == 1 or failures % 30 == 0:
                        _log.warning("manager unreachable, retrying", error=str(exc))
                    await trio.sleep(self.retry_interval)
                    continue
                except (KeyError, TypeError) as exc:
                    raise RPCTransportError(
                        f"malformed WorkerConnect answer from {self.client.url}: {exc!r}"
                    ) from None
                _log.info("registered", worker_id=self.worker_id, session=self.session)
                self.connected.set()
                return

    async def _reconnect(self, stale: str | None) -> None:
        """Reconnect unless someone already replaced the ``stale`` session."""
        if self.session == stale:
            self.connected = trio.Event()
            _log.warning("session lost, reconnecting", session=stale)
            await self.connect()

    async def call(self, method: str, *params: Any,
                   timeout: float | None = None) -> Any:  # noqa: ASYNC109 (per-call deadline)
        """``method(session, *params)``, reconnecting once if the session is unknown."""
        await self.connected.wait()
        session = self.session
        try:
            return await self.client.call(method, [session, *params], timeout=timeout)
        except SessionError:
            await self._reconnect(session)
            return await self.client.call(method, [self.session, *params], timeout=timeout)

    async def run_heartbeats(self, interval: float,
                             on_abort: Callable[[str], None]) -> NoReturn:
        """Send a heartbeat every ``interval`` seconds, forever.

        Transport errors are logged and the next beat tries again; a task id in the
        answer's ``abort`` list goes to ``on_abort``.
        """
        while True:
            await trio.sleep(interval)
            try:
                answer = await self.call("Sealing.WorkerHeartbeat", await self.info(False))
            except RPCTransportError as exc:
                _log.warning("heartbeat failed", error=str(exc))
                continue
            except RPCError as exc:
                _log.error("heartbeat refused", error=str(exc))
                continue
            for task_id in (answer or {}).get("abort", []) if isinstance(answer, dict) else []:
                on_abort(str(task_id))
