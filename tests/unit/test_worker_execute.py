"""The executing window: accounting, granted threads and GPUs, abort, cancellation."""

from __future__ import annotations

import importlib
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing
import trio
import trio.testing

from sealagent.errors import PhaseCancelledError, PhaseFailedError
from sealagent.phases import FinalizeRequest, SectorPaths
from sealagent.plugins import PluginSet, Selection
from sealagent.protocol import Assignment
from sealagent.sched.resources import GpuInfo, WorkerResources
from sealagent.worker.execute import Executor, GpuLedger
from sealagent.worker.inventory import GpuDevice

GIB = 1 << 30
BACKEND = '''
import os
import time
from pathlib import Path

from sealagent import hookimpl
from sealagent.phase_progress import report_progress
from sealagent.phases import BackendInfo, FinalizeResult


@hookimpl
def sealagent_backend_info():
    return BackendInfo(name="fake", description="test double", version="1")


@hookimpl
def sealagent_finalize(request):
    cache = Path(request.paths.cache)
    action = cache.name
    if action == "sleep":
        (cache.parent / "pid").write_text(str(os.getpid()))
        time.sleep(60)
    if action == "fail":
        raise ValueError("the disk is on fire")
    if action == "progress":
        for done in range(1, 5):
            report_progress("work", done, 4)
        report_progress("next", 1, 2)
    return FinalizeResult((os.environ.get("OMP_NUM_THREADS", "<unset>"),
                           os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
                           os.environ.get("EXTRA", "<unset>")))
'''


@pytest.fixture
def selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Selection]:
    root = tmp_path / "modules"
    root.mkdir()
    (root / "fake_exec_backend.py").write_text(textwrap.dedent(BACKEND))
    monkeypatch.syspath_prepend(str(root))
    module = importlib.import_module("fake_exec_backend")
    yield PluginSet.load(autoload=False, extra={"fake": module}).select(["fake"])
    sys.modules.pop("fake_exec_backend", None)


def worker(cpus: int = 4, gpus: int = 0) -> WorkerResources:
    return WorkerResources(cpus=cpus, mem_physical=64 * GIB,
                           gpus=tuple(GpuInfo(f"gpu{i}", GIB) for i in range(gpus)))


def finalize(task_id: str, threads: int = 1, gpu: float = 0.0) -> Assignment:
    return Assignment.from_json({
        "task_id": task_id, "attempt": 1, "task_type": "seal/v0/finalize",
        "sector": {"miner": 1000, "number": 1}, "proof": 5, "params": {},
        "threads": threads, "gpu": gpu})


def request(tmp_path: Path, action: str) -> FinalizeRequest:
    a = finalize("x")
    return FinalizeRequest(a.sector_ref, SectorPaths(str(tmp_path / "u"), str(tmp_path / "s"),
                                                     str(tmp_path / action)))


async def run(executor: Executor, a: Assignment, req: FinalizeRequest) -> Any:
    async with executor.slot(a) as need:
        return await executor.execute(a, req, need)


async def test_phase_gets_granted_threads_no_gpu_and_extra_env(
        tmp_path: Path, selection: Selection) -> None:
    executor = Executor(worker(), selection, env={"EXTRA": "yes"})
    outcome = await run(executor, finalize("t-1", threads=3), request(tmp_path, "env"))
    assert outcome.backend == "fake"
    assert outcome.result.removed == ("3", "", "yes")
    assert executor.active.cpu_use == 0 and executor.running == []


async def test_phase_gets_its_gpu_by_uuid(tmp_path: Path, selection: Selection) -> None:
    devices = (GpuDevice(0, "GPU-a", "gpu0", GIB), GpuDevice(1, "GPU-b", "gpu1", GIB))
    executor = Executor(worker(gpus=2), selection, gpus=devices)
    executor.gpus.used["GPU-a"] = 0.5
    outcome = await run(executor, finalize("t-1", gpu=1.0), request(tmp_path, "env"))
    assert outcome.result.removed[1] == "GPU-b"
    assert executor.gpus.used == {"GPU-a": 0.5, "GPU-b": 0.0}


def test_gpu_ledger_spreads_shares() -> None:
    ledger = GpuLedger((GpuDevice(0, "a", "g", 1), GpuDevice(1, "b", "g", 1)))
    first, second = ledger.take(0.5), ledger.take(0.5)
    assert [d.uuid for d in first + second] == ["a", "b"]
    both = ledger.take(2.0)
    assert sorted(d.uuid for d in both) == ["a", "b"]
    ledger.give_back(both, 2.0)
    assert ledger.used == {"a": 0.5, "b": 0.5}
    assert ledger.take(0.0) == [] and GpuLedger(()).take(1.0) == []


async def test_phase_progress_goes_into_the_log(tmp_path: Path, selection: Selection) -> None:
    executor = Executor(worker(), selection)
    with structlog.testing.capture_logs() as logs:
        outcome = await run(executor, finalize("t-1"), request(tmp_path, "progress"))
    assert outcome.backend == "fake"
    lines = [(e["stage"], e["done"], e["total"]) for e in logs
             if e["event"] == "phase progress"]
    # The child passes each stage's first report and its end; so does the agent's log.
    assert lines == [("work", 1, 4), ("work", 4, 4), ("next", 1, 2)]


async def test_failed_phase_raises(tmp_path: Path, selection: Selection) -> None:
    executor = Executor(worker(), selection)
    with pytest.raises(PhaseFailedError, match="the disk is on fire"):
        await run(executor, finalize("t-1"), request(tmp_path, "fail"))


async def test_slot_waits_for_threads(selection: Selection) -> None:
    executor = Executor(worker(cpus=4), selection)
    order: list[str] = []

    async def second() -> None:
        async with executor.slot(finalize("t-2", threads=3)):
            order.append("second")

    async with trio.open_nursery() as nursery, executor.slot(finalize("t-1", threads=3)):
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()
        assert order == []
        order.append("first done")
    assert order == ["first done", "second"]


async def test_oversized_task_runs_when_idle(selection: Selection) -> None:
    executor = Executor(worker(cpus=2), selection)
    async with executor.slot(finalize("t-1", threads=16)) as need:
        assert need.threads == 16


async def test_ignore_resources_overcommits(selection: Selection) -> None:
    executor = Executor(worker(cpus=2), selection, ignore_resources=True)
    async with executor.slot(finalize("t-1", threads=2)), \
            executor.slot(finalize("t-2", threads=2)):
        assert executor.active.cpu_use == 4


def _dead(pid: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` is gone (or a zombie waiting for init to reap it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


async def _pid(tmp_path: Path) -> int:
    pid_file = tmp_path / "pid"
    with trio.fail_after(20):
        while not pid_file.exists() or not pid_file.read_text():  # noqa: ASYNC110 - a file
            await trio.sleep(0.05)
    return int(pid_file.read_text())


async def test_abort_kills_the_phase(tmp_path: Path, selection: Selection) -> None:
    executor = Executor(worker(), selection)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            errors: list[BaseException] = []

            async def victim() -> None:
                try:
                    await run(executor, finalize("t-1"), request(tmp_path, "sleep"))
                except PhaseCancelledError as exc:
                    errors.append(exc)

            nursery.start_soon(victim)
            pid = await _pid(tmp_path)
            assert executor.running == ["t-1"]
            assert executor.abort("t-1") is True
            assert executor.abort("t-404") is False
    assert len(errors) == 1 and "cancelled" in str(errors[0])
    assert _dead(pid)


async def test_cancelling_the_caller_kills_the_phase(tmp_path: Path,
                                                     selection: Selection) -> None:
    executor = Executor(worker(), selection)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, executor, finalize("t-1"), request(tmp_path, "sleep"))
            pid = await _pid(tmp_path)
            nursery.cancel_scope.cancel()
    assert _dead(pid)
    assert executor.running == [] and executor.active.cpu_use == 0


async def test_cancelling_the_caller_still_removes_the_phase_workdir(
        tmp_path: Path, selection: Selection, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    executor = Executor(worker(), selection)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, executor, finalize("t-1"), request(tmp_path, "sleep"))
            await _pid(tmp_path)
            assert [p.name.startswith("sealagent-phase-") for p in scratch.iterdir()] == [True]
            nursery.cancel_scope.cancel()
    assert list(scratch.iterdir()) == []
