"""The fit check in Lotus' order, and the active-resources accounting."""

from __future__ import annotations

import pytest

from sealagent.sched.fit import ActiveResources, Need, Reject
from sealagent.sched.resources import DEFAULT_TABLE, GpuInfo, Resources, WorkerResources
from sealagent.vocab.registry import GIB, MIB, RegisteredSealProof
from sealagent.vocab.tasks import SealTaskType, TaskType

P32 = RegisteredSealProof.StackedDrg32GiBV1_1
PC1 = SealTaskType(P32, TaskType.PRECOMMIT1)


def box(cpus: int = 64, ram: int = 256 * GIB, gpus: int = 0, swap: int = 0,
        mem_used: int = 0) -> WorkerResources:
    return WorkerResources(cpus=cpus, mem_physical=ram, mem_swap=swap, mem_used=mem_used,
                           gpus=tuple(GpuInfo(f"gpu{i}") for i in range(gpus)))


def need(res: Resources, worker: WorkerResources, seal_task: SealTaskType = PC1) -> Need:
    return Need.resolve(seal_task, res, worker)


def fill(acc: ActiveResources, n: Need, worker: WorkerResources, limit: int = 100) -> int:
    """Add tasks while they fit; returns how many did."""
    count = 0
    while count < limit and acc.can_handle(f"t{count}", n, worker):
        acc.add(f"t{count}", n, worker)
        count += 1
    return count


def test_fit_checks_max_concurrent_before_memory() -> None:
    worker = box(ram=GIB)
    res = Resources(min_memory=2 * GIB, max_concurrent=1)
    acc = ActiveResources()
    acc.add("a", need(res, worker), worker)
    assert acc.reject_reason("b", need(res, worker), worker) is Reject.MAX_CONCURRENT
    assert ActiveResources().reject_reason("b", need(res, worker), worker) \
        is Reject.PHYSICAL_MEMORY


def test_fit_max_concurrent_does_not_count_the_same_request_twice() -> None:
    worker = box()
    n = need(Resources(max_concurrent=1), worker)
    acc = ActiveResources()
    acc.add("a", n, worker)
    assert acc.can_handle("a", n, worker)
    assert not acc.can_handle("b", n, worker)


def test_fit_max_concurrent_is_per_proof_and_task_type() -> None:
    worker = box()
    res = Resources(max_concurrent=1)
    acc = ActiveResources()
    acc.add("a", need(res, worker), worker)
    other = SealTaskType(RegisteredSealProof.StackedDrg64GiBV1_1, TaskType.PRECOMMIT1)
    assert acc.can_handle("b", need(res, worker, other), worker)


def test_fit_ignore_resources_still_applies_max_concurrent() -> None:
    worker = box(ram=GIB)
    n = need(Resources(min_memory=10 * GIB, max_concurrent=2), worker)
    acc = ActiveResources()
    assert acc.can_handle("a", n, worker, ignore_resources=True)
    acc.add("a", n, worker)
    acc.add("b", n, worker)
    assert acc.reject_reason("c", n, worker, ignore_resources=True) is Reject.MAX_CONCURRENT


def test_fit_physical_memory_counts_base_min_memory_but_not_os_usage() -> None:
    worker = box(ram=10 * GIB, swap=100 * GIB, mem_used=9 * GIB)
    acc = ActiveResources()
    assert acc.can_handle("a", need(Resources(min_memory=9 * GIB, base_min_memory=GIB,
                                              max_memory=GIB), worker), worker)
    assert acc.reject_reason("a", need(Resources(min_memory=9 * GIB, base_min_memory=GIB + 1),
                                       worker), worker) is Reject.PHYSICAL_MEMORY


def test_fit_virtual_memory_counts_swap_and_the_os_usage_floor() -> None:
    worker = box(ram=10 * GIB, swap=6 * GIB, mem_used=4 * GIB)
    acc = ActiveResources()
    assert acc.can_handle("a", need(Resources(max_memory=12 * GIB), worker), worker)
    assert acc.reject_reason("a", need(Resources(max_memory=12 * GIB + 1), worker), worker) \
        is Reject.VIRTUAL_MEMORY
    acc.add("b", need(Resources(max_memory=5 * GIB), worker), worker)
    assert acc.can_handle("a", need(Resources(max_memory=11 * GIB), worker), worker)


def test_fit_worked_example_256g_worker_fits_three_32g_pc1_with_multicore_sdr() -> None:
    worker = box(cpus=64, ram=256 * GIB)
    pc1 = DEFAULT_TABLE.spec(P32, TaskType.PRECOMMIT1)
    n = need(Resources(pc1.min_memory, pc1.max_memory, 0, 4, 0, pc1.base_min_memory), worker)
    acc = ActiveResources()
    assert fill(acc, n, worker) == 3
    assert acc.reject_reason("x", n, worker) is Reject.VIRTUAL_MEMORY
    assert acc.cpu_use == 12


def test_fit_threads_use_the_92_percent_rule() -> None:
    worker = box(cpus=16, ram=1024 * GIB)
    n = need(Resources(max_parallelism=-1), worker)
    acc = ActiveResources()
    assert fill(acc, n, worker) == 1
    assert acc.cpu_use == 14
    assert acc.reject_reason("x", n, worker) is Reject.THREADS
    assert acc.can_handle("x", need(Resources(max_parallelism=2), worker), worker)


def test_fit_fractional_gpu_utilization() -> None:
    worker = box(gpus=1)
    half = need(Resources(gpu_utilization=0.5, max_parallelism=1), worker)
    acc = ActiveResources()
    assert fill(acc, half, worker) == 2
    assert acc.reject_reason("x", half, worker) is Reject.GPU
    two = box(gpus=2)
    assert fill(ActiveResources(), need(Resources(gpu_utilization=0.5), two), two) == 4


def test_fit_worker_without_gpu_is_never_rejected_for_gpu() -> None:
    worker = box(gpus=0)
    n = need(Resources(gpu_utilization=1.0, max_parallelism=1), worker)
    assert n.granted_gpu == 0.0
    assert fill(ActiveResources(), n, worker, limit=10) == 10


def test_add_and_free_restore_the_accumulator_and_base_memory_is_never_summed() -> None:
    worker = box(gpus=1)
    res = Resources(min_memory=GIB, max_memory=2 * GIB, gpu_utilization=0.5,
                    max_parallelism=-1, max_parallelism_gpu=3, base_min_memory=32 * GIB)
    n = need(res, worker)
    acc = ActiveResources()
    acc.add("a", n, worker)
    acc.add("b", n, worker)
    assert (acc.mem_used_min, acc.mem_used_max, acc.cpu_use, acc.gpu_used) == (
        2 * GIB, 4 * GIB, 6, 1.0)
    assert acc.count(PC1) == 2 and acc.count() == 2
    acc.free("a", n)
    acc.free("b", n)
    assert (acc.mem_used_min, acc.mem_used_max, acc.cpu_use, acc.gpu_used) == (0, 0, 0, 0.0)
    assert acc.count() == 0


def test_utilization_is_the_most_used_resource() -> None:
    worker = box(cpus=10, ram=100 * GIB, mem_used=20 * GIB, gpus=2)
    acc = ActiveResources()
    assert acc.utilization(worker) == pytest.approx(0.2)
    delta = acc.add("a", need(Resources(min_memory=10 * MIB, max_parallelism=5), worker), worker)
    assert delta == pytest.approx(0.3)
    acc.add("b", need(Resources(gpu_utilization=2.0, max_parallelism=1), worker), worker)
    assert acc.utilization(worker) == pytest.approx(1.0)
