"""Reporting results: through the durable outbox, retried until the manager acknowledges.

:meth:`Reporter.submit` stores a report in the outbox (fsynced) and wakes the sender;
:meth:`Reporter.run` sends every pending report with ``Sealing.ReportResult`` and forgets
it once acknowledged.  While the manager is unreachable the reports stay in the outbox
and are sent again every :data:`RETRY_INTERVAL` (Lotus retries its ``Return*`` calls every
5 s), also after a restart of the agent.  A report the manager refuses outright (an
application error: it does not know the task) is dropped with an error in the log, since
sending it again cannot succeed.
"""

from __future__ import annotations

import math
from typing import Final, NoReturn

import structlog
import trio

from sealagent.errors import RPCRemoteError, RPCTransportError
from sealagent.protocol import Report
from sealagent.rpc.jsonrpc import APPLICATION_ERROR
from sealagent.worker.link import ManagerLink
from sealagent.worker.outbox import Outbox

RETRY_INTERVAL: Final = 5.0
"""Seconds between attempts to deliver pending reports."""

_log = structlog.get_logger(__name__)


class Reporter:
    """Delivers the outbox's reports to the manager."""

    def __init__(self, link: ManagerLink, outbox: Outbox, *,
                 retry_interval: float = RETRY_INTERVAL) -> None:
        self.link = link
        self.outbox = outbox
        self.retry_interval = retry_interval
        self._wake = trio.Event()

    async def submit(self, report: Report) -> None:
        """Store ``report`` durably and have it sent now."""
        await trio.to_thread.run_sync(self.outbox.add, report)
        self._wake.set()

    async def run(self) -> NoReturn:
        """Send pending reports until cancelled (see the module docstring)."""
        while True:
            self._wake = trio.Event()
            delivered_all = await self._send_pending()
            with trio.move_on_after(math.inf if delivered_all else self.retry_interval):
                await self._wake.wait()

    async def _send_pending(self) -> bool:
        """Try every pending report once; True when none is left."""
        for report in await trio.to_thread.run_sync(self.outbox.pending):
            try:
                await self.link.call("Sealing.ReportResult", report.to_json())
            except RPCTransportError as exc:
                _log.warning("report not delivered, will retry", task_id=report.task_id,
                             error=str(exc))
                return False
            except RPCRemoteError as exc:
                if exc.code != APPLICATION_ERROR:
                    _log.warning("report refused, will retry", task_id=report.task_id,
                                 error=str(exc))
                    return False
                _log.error("report rejected by the manager, dropped",
                           task_id=report.task_id, attempt=report.attempt, error=str(exc))
            await trio.to_thread.run_sync(self.outbox.ack, report)
            _log.info("reported", task_id=report.task_id, attempt=report.attempt,
                      ok=report.ok)
        return True

    async def wait_delivered(self, poll: float = 0.1) -> None:
        """Return once the outbox is empty (every report acknowledged or dropped).

        Pending reports get one immediate attempt, then the usual retry interval.
        """
        self._wake.set()
        while await trio.to_thread.run_sync(len, self.outbox):  # noqa: ASYNC110 - files
            await trio.sleep(poll)
