"""Host inventory: cgroup limits, CPU affinity, GPU visibility, the report."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import psutil
import pytest

from sealagent.sched.resources import DEFAULT_TABLE, GpuInfo
from sealagent.worker.inventory import (
    CgroupLimits,
    GpuDevice,
    nvml_devices,
    read_cgroup_limits,
    select_visible,
    take_inventory,
    usable_cpus,
)

GIB = 1 << 30
DEVICES = (GpuDevice(0, "GPU-aaaa-1111", "NVIDIA H100", 80 * GIB),
           GpuDevice(1, "GPU-bbbb-2222", "NVIDIA H100", 80 * GIB),
           GpuDevice(2, "GPU-cccc-3333", "NVIDIA A100", 40 * GIB))


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_cgroup_v2_limits_of_the_process_group(tmp_path: Path) -> None:
    _write(tmp_path, "cgroup.controllers", "cpu memory")
    _write(tmp_path, "box/cpu.max", "250000 100000")
    _write(tmp_path, "box/memory.max", str(8 * GIB))
    _write(tmp_path, "box/memory.current", str(3 * GIB))
    _write(tmp_path, "box/memory.swap.max", "max")
    limits = read_cgroup_limits(tmp_path, "0::/box\n")
    assert limits == CgroupLimits(cpus=2.5, memory=8 * GIB, memory_used=3 * GIB, swap=None)


def test_cgroup_v2_without_limits(tmp_path: Path) -> None:
    _write(tmp_path, "cgroup.controllers", "cpu memory")
    _write(tmp_path, "cpu.max", "max 100000")
    _write(tmp_path, "memory.max", "max")
    assert read_cgroup_limits(tmp_path, "0::/\n") == CgroupLimits()


def test_cgroup_v1_limits(tmp_path: Path) -> None:
    _write(tmp_path, "memory/job/memory.limit_in_bytes", str(4 * GIB))
    _write(tmp_path, "memory/job/memory.usage_in_bytes", str(GIB))
    _write(tmp_path, "memory/job/memory.memsw.limit_in_bytes", str(6 * GIB))
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "-1")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    proc = "4:memory:/job\n1:cpu,cpuacct:/\n"
    assert read_cgroup_limits(tmp_path, proc) == CgroupLimits(
        cpus=None, memory=4 * GIB, memory_used=GIB, swap=2 * GIB)


def test_cgroup_v1_unlimited_is_no_limit(tmp_path: Path) -> None:
    _write(tmp_path, "memory/memory.limit_in_bytes", "9223372036854771712")
    assert read_cgroup_limits(tmp_path, "4:memory:/\n").memory is None


def test_cpus_follow_affinity_and_quota() -> None:
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus() == affinity
    assert usable_cpus(CgroupLimits(cpus=0.5)) == 1
    assert usable_cpus(CgroupLimits(cpus=1000.0)) == affinity


@pytest.mark.parametrize(("env", "expected"), [
    ({}, [0, 1, 2]),
    ({"CUDA_VISIBLE_DEVICES": "2,0"}, [2, 0]),
    ({"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}, [1]),
    ({"CUDA_VISIBLE_DEVICES": ""}, []),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, []),
    ({"NVIDIA_VISIBLE_DEVICES": "1"}, [1]),
    ({"NVIDIA_VISIBLE_DEVICES": "1,2"}, [1, 2]),
    ({"NVIDIA_VISIBLE_DEVICES": "0,1,2"}, [0, 1, 2]),
    ({"NVIDIA_VISIBLE_DEVICES": "5,6,7"}, [0, 1, 2]),
    ({"CUDA_VISIBLE_DEVICES": "5,6,7"}, []),
    ({"NVIDIA_VISIBLE_DEVICES": "all"}, [0, 1, 2]),
    ({"NVIDIA_VISIBLE_DEVICES": "none"}, []),
    ({"CUDA_VISIBLE_DEVICES": "0", "NVIDIA_VISIBLE_DEVICES": "1"}, [0]),
    ({"CUDA_VISIBLE_DEVICES": "7,GPU-,1"}, [1]),
])
def test_visible_devices(env: dict[str, str], expected: list[int]) -> None:
    assert [d.index for d in select_visible(DEVICES, env)] == expected


def test_inventory_applies_limits_swap_and_gpus() -> None:
    limits = CgroupLimits(cpus=1.0, memory=2 * GIB, memory_used=GIB // 2, swap=0)
    inv = take_inventory(environ={"CUDA_VISIBLE_DEVICES": "1"}, limits=limits,
                         devices=DEVICES)
    res = inv.resources
    assert res.cpus == 1
    assert res.mem_physical == min(2 * GIB, psutil.virtual_memory().total)
    assert res.mem_swap == 0
    assert res.gpus == (GpuInfo("NVIDIA H100", 80 * GIB),)
    assert inv.gpus == (DEVICES[1],)
    assert res.table is DEFAULT_TABLE


def test_inventory_no_swap_and_host_numbers() -> None:
    inv = take_inventory(no_swap=True, environ={}, limits=CgroupLimits(), devices=())
    res = inv.resources
    assert res.mem_swap == res.mem_swap_used == 0
    assert res.mem_physical == psutil.virtual_memory().total
    assert 0 <= res.mem_used <= res.mem_physical
    assert res.gpus == () and inv.gpus == ()
    with_swap = take_inventory(environ={}, limits=CgroupLimits(), devices=())
    assert with_swap.resources.mem_swap == psutil.swap_memory().total


class FakeNVML(types.ModuleType):
    """``pynvml`` in a container given host GPU 1 only: NVML sees one device, index 0."""

    class NVMLError(Exception):
        pass

    def __init__(self, visible: list[tuple[str, str, int]]) -> None:
        super().__init__("pynvml")
        self.visible = visible
        self.initialised = 0

    def nvmlInit(self) -> None:
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.visible)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return self.visible[handle][1].encode()

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self.visible[handle][0]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(total=self.visible[handle][2])


def test_a_container_given_gpu_1_finds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNVML([("GPU-bbbb", "NVIDIA H100", 80 * GIB)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    inv = take_inventory(environ={"NVIDIA_VISIBLE_DEVICES": "1"}, limits=CgroupLimits())
    assert inv.resources.gpus == (GpuInfo("NVIDIA H100", 80 * GIB),)
    assert [(d.index, d.uuid) for d in inv.gpus] == [(0, "GPU-bbbb")]
    assert fake.initialised == 0
    # by UUID it is found too; a UUID the container does not hold finds nothing
    by_uuid = take_inventory(environ={"NVIDIA_VISIBLE_DEVICES": "GPU-bbbb"},
                             limits=CgroupLimits())
    assert len(by_uuid.gpus) == 1
    assert take_inventory(environ={"NVIDIA_VISIBLE_DEVICES": "GPU-cccc"},
                          limits=CgroupLimits()).gpus == ()


def test_nvml_without_a_driver_means_no_gpus() -> None:
    devices = nvml_devices()
    assert all(d.uuid and d.name and d.memory > 0 for d in devices)
