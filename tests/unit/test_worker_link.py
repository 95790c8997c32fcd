"""The agent's link to the manager, its reporter and its window loop, against a stub."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from sealagent.errors import AuthError, RPCRemoteError, RPCTransportError, SessionError
from sealagent.protocol import Assignment, Report
from sealagent.rpc.jsonrpc import APPLICATION_ERROR
from sealagent.worker.link import ManagerLink
from sealagent.worker.outbox import Outbox
from sealagent.worker.reporter import Reporter
from sealagent.worker.windows import WindowLoop


class StubManager:
    """Answers calls from a script: per method, a list of answers or exceptions."""

    url = "http://manager.test:2345"

    def __init__(self, **script: list[Any]) -> None:
        self.script = script
        self.calls: list[tuple[str, list[Any]]] = []
        self.sessions = 0

    async def call(self, method: str, params: list[Any], **_: Any) -> Any:
        await trio.lowlevel.checkpoint()
        self.calls.append((method, params))
        if method == "Sealing.WorkerConnect" and not self.script.get(method):
            self.sessions += 1
            return {"worker_id": "w-1", "session": f"s-{self.sessions}"}
        answers = self.script.get(method) or [None]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if method == "Sealing.RequestWindow" and not answer["tasks"]:
            await trio.sleep(params[1])  # a long-poll that nothing filled
        return answer


async def info(with_sectors: bool) -> dict[str, Any]:
    return {"name": "w1"}


def link_to(stub: StubManager) -> ManagerLink:
    return ManagerLink(stub, info, retry_interval=1.0)  # type: ignore[arg-type]


async def test_connect_retries_until_the_manager_answers(
        autojump_clock: trio.testing.MockClock) -> None:
    stub = StubManager(**{"Sealing.WorkerConnect": [
        RPCTransportError("down"), RPCTransportError("down"),
        {"worker_id": "w-1", "session": "s-9"}]})
    link = link_to(stub)
    await link.connect()
    assert (link.worker_id, link.session) == ("w-1", "s-9")
    assert len(stub.calls) == 3 and trio.current_time() >= 2.0


async def test_connect_with_a_refused_token_says_so() -> None:
    stub = StubManager(**{"Sealing.WorkerConnect": [AuthError("invalid token")]})
    with pytest.raises(AuthError, match="refused this agent's token: invalid token"):
        await link_to(stub).connect()


async def test_unknown_session_reconnects_once_and_repeats() -> None:
    stub = StubManager(**{"Sealing.TaskState": [SessionError("unknown"), {"ack": True}]})
    link = link_to(stub)
    await link.connect()
    assert await link.call("Sealing.TaskState", "t-1", 1, "running") == {"ack": True}
    methods = [(m, p[0] if p else None) for m, p in stub.calls]
    assert methods == [("Sealing.WorkerConnect", {"name": "w1"}),
                       ("Sealing.TaskState", "s-1"),
                       ("Sealing.WorkerConnect", {"name": "w1"}),
                       ("Sealing.TaskState", "s-2")]


async def test_heartbeats_deliver_aborts(autojump_clock: trio.testing.MockClock) -> None:
    stub = StubManager(**{"Sealing.WorkerHeartbeat": [
        RPCTransportError("blip"), {"abort": ["t-3"]}, {"abort": []}]})
    link = link_to(stub)
    await link.connect()
    aborted: list[str] = []
    with trio.move_on_after(3.5):
        await link.run_heartbeats(1.0, aborted.append)
    assert aborted == ["t-3"]


async def test_reporter_retries_until_acknowledged(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    stub = StubManager(**{"Sealing.ReportResult": [
        RPCTransportError("down"), RPCTransportError("down"), {"ack": True}]})
    link = link_to(stub)
    await link.connect()
    outbox = Outbox(tmp_path)
    reporter = Reporter(link, outbox, retry_interval=5.0)
    # Submitted before the reporter runs, so no wake-up shortens a retry wait.
    await reporter.submit(Report("t-1", 1, True, {"x": 1}))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reporter.run)
        await reporter.wait_delivered()
        nursery.cancel_scope.cancel()
    assert outbox.pending() == []
    reports = [p for m, p in stub.calls if m == "Sealing.ReportResult"]
    assert len(reports) == 3 and reports[-1][1]["task_id"] == "t-1"
    assert trio.current_time() >= 10.0


async def test_reporter_drops_a_report_the_manager_rejects(tmp_path: Path) -> None:
    stub = StubManager(**{"Sealing.ReportResult": [
        RPCRemoteError(APPLICATION_ERROR, "unknown task 't-1'")]})
    link = link_to(stub)
    await link.connect()
    outbox = Outbox(tmp_path)
    outbox.add(Report("t-1", 1, False, error="x"))
    reporter = Reporter(link, outbox)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reporter.run)
        with trio.fail_after(5):
            await reporter.wait_delivered()
        nursery.cancel_scope.cancel()
    assert len(outbox) == 0


def assignment(task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "attempt": 1, "task_type": "seal/v0/finalize",
            "sector": {"miner": 1000, "number": 1}, "proof": 5, "params": {}}


async def test_windows_feed_tasks_and_skip_malformed_ones(
        autojump_clock: trio.testing.MockClock) -> None:
    stub = StubManager(**{"Sealing.RequestWindow": [
        {"tasks": [assignment("t-1"), {"task_id": "t-bad"}]}, {"tasks": []},
        RPCTransportError("down"), {"tasks": [assignment("t-2")]}, {"tasks": []}]})
    link = link_to(stub)
    await link.connect()
    got: list[str] = []

    async def dispatch(tasks: Sequence[Assignment]) -> None:
        got.extend(t.task_id for t in tasks)

    loop = WindowLoop(link, dispatch, windows=1, wait=10.0, retry_interval=1.0)
    with trio.move_on_after(100):
        await loop.run()
    assert got == ["t-1", "t-2"]
    waits = {p[1] for m, p in stub.calls if m == "Sealing.RequestWindow"}
    assert waits == {10.0}
