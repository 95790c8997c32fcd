"""What this host offers: CPUs, memory, swap and GPUs, as the agent reports them.

* CPUs are the logical CPUs this process may run on (its affinity mask, like Go's
  ``NumCPU``), further capped by a cgroup CPU quota (``cpu.max`` in cgroup v2,
  ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` in v1), rounded up.
* Memory and swap come from psutil; a cgroup memory limit (``memory.max``,
  ``memory.limit_in_bytes``) or swap limit (``memory.swap.max``,
  ``memory.memsw.limit_in_bytes``) smaller than the host's replaces it, and the cgroup's
  own usage then counts as used.  ``--no-swap`` reports no swap at all.
* GPUs come from NVML (``pynvml`` of nvidia-ml-py); any NVML error means "no GPUs".  The
  devices named in ``CUDA_VISIBLE_DEVICES`` (or, when that is unset,
  ``NVIDIA_VISIBLE_DEVICES``) are the only ones reported, by index or UUID.  In a
  container, the NVIDIA runtime has already applied ``NVIDIA_VISIBLE_DEVICES``: NVML sees
  only the devices it names, renumbered from 0 (``NVIDIA_VISIBLE_DEVICES=1`` shows one
  GPU, index 0).  So when NVML sees exactly as many devices as that variable names by
  index, they are those devices and all are reported; only where NVML sees more (a host
  without the runtime) do the indices select among them.

* The machine is the kernel's boot id (``/proc/sys/kernel/random/boot_id``, the same in
  every container of a host; the host name where it cannot be read), and the CPU set is
  the affinity mask: the manager warns when agents on one machine may use the same cores,
  since each reports them as its own.

The agent takes a fresh :class:`Inventory` for every heartbeat, so the manager always
schedules against current numbers.  Everything here blocks briefly on ``/proc``, ``/sys``
and NVML; Trio code calls :func:`take_inventory` through ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psutil

from sealagent.sched.resources import DEFAULT_TABLE, GpuInfo, ResourceTable, WorkerResources

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
BOOT_ID: Final = Path("/proc/sys/kernel/random/boot_id")
"""The kernel's boot id: one per machine, whatever container reads it."""
_UNLIMITED_V1: Final = 1 << 60
"""cgroup v1 reports "no limit" as a huge number (page-rounded ``LLONG_MAX``)."""


@dataclass(frozen=True)
class GpuDevice:
    """One GPU this agent may use: its NVML index and UUID, name and memory."""

    index: int
    uuid: str
    name: str
    memory: int

    @property
    def info(self) -> GpuInfo:
        """The device as the protocol reports it (name and memory)."""
        return GpuInfo(self.name, self.memory)


@dataclass(frozen=True)
class CgroupLimits:
    """Limits of this process's cgroup; ``None`` where there is none."""

    cpus: float | None = None
    memory: int | None = None
    memory_used: int | None = None
    swap: int | None = None


@dataclass(frozen=True)
class Inventory:
    """A snapshot of the host's resources, with the GPUs' identities."""

    resources: WorkerResources
    gpus: tuple[GpuDevice, ...] = ()
    machine: str = ""
    """The kernel's boot id (the host name where it cannot be read)."""
    cpu_set: tuple[int, ...] = ()
    """The CPUs this process may run on."""


# ------------------------------------------------------------------------------ cgroups


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    if text is None or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED_V1 else value


def _own_cgroup_dirs(root: Path, proc_cgroup: str | None, controller: str | None) -> list[Path]:
    """Directories that may hold this process's cgroup files, most specific first.

    ``controller`` None means the cgroup v2 unified hierarchy (``0::/path``).
    """
    dirs: list[Path] = []
    for line in (proc_cgroup or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        names, _, rel = rest.partition(":")
        if controller is None and hierarchy == "0" and names == "":
            dirs.append(root / rel.lstrip("/"))
        elif controller is not None and controller in names.split(","):
            dirs.append(root / names / rel.lstrip("/"))
    dirs.append(root if controller is None else root / controller)
    return list(dict.fromkeys(dirs))


def _first_int(dirs: Sequence[Path], name: str) -> int | None:
    for directory in dirs:
        if (directory / name).exists():
            return _read_int(directory / name)
    return None


def read_cgroup_limits(root: Path = CGROUP_ROOT,
                       proc_cgroup: str | None = None) -> CgroupLimits:
    """The CPU, memory and swap limits of this process's cgroup (v2, else v1).

    ``proc_cgroup`` is the text of ``/proc/self/cgroup`` (read when None).
    """
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup"))
    if (root / "cgroup.controllers").exists():
        return _cgroup_v2(_own_cgroup_dirs(root, proc_cgroup, None))
    return _cgroup_v1(_own_cgroup_dirs(root, proc_cgroup, "memory"),
                      _own_cgroup_dirs(root, proc_cgroup, "cpu"))


def _cgroup_v2(dirs: list[Path]) -> CgroupLimits:
    cpus = None
    for directory in dirs:
        text = _read(directory / "cpu.max")
        if text is not None:
            quota, _, period = text.partition(" ")
            if quota != "max" and period.isdigit() and quota.isdigit() and int(period) > 0:
                cpus = int(quota) / int(period)
            break
    memory = _first_int(dirs, "memory.max")
    used = _first_int(dirs, "memory.current") if memory is not None else None
    return CgroupLimits(cpus, memory, used, _first_int(dirs, "memory.swap.max"))


def _cgroup_v1(memory_dirs: list[Path], cpu_dirs: list[Path]) -> CgroupLimits:
    quota = _first_int(cpu_dirs, "cpu.cfs_quota_us")
    period = _first_int(cpu_dirs, "cpu.cfs_period_us")
    cpus = quota / period if quota is not None and quota > 0 and period else None
    memory = _first_int(memory_dirs, "memory.limit_in_bytes")
    used = _first_int(memory_dirs, "memory.usage_in_bytes") if memory is not None else None
    memsw = _first_int(memory_dirs, "memory.memsw.limit_in_bytes")
    swap = memsw - memory if memsw is not None and memory is not None else None
    return CgroupLimits(cpus, memory, used, None if swap is None else max(0, swap))


# ---------------------------------------------------------------------------------- CPU


def usable_cpus(limits: CgroupLimits | None = None) -> int:
    """Logical CPUs this process may use: its affinity, capped by the cgroup quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    if limits is not None and limits.cpus is not None:
        count = min(count, max(1, math.ceil(limits.cpus)))
    return max(1, count)


def cpu_set() -> tuple[int, ...]:
    """The CPUs this process may run on (every CPU where affinity is unknown)."""
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return tuple(range(os.cpu_count() or 1))


def machine_id(boot_id: Path = BOOT_ID) -> str:
    """Which kernel this is: its boot id, shared by every container of the host."""
    return _read(boot_id) or socket.gethostname()


# ---------------------------------------------------------------------------------- GPU


def _visible_filter(environ: Mapping[str, str]) -> tuple[str, list[str] | None]:
    """The visibility variable in force and its device selectors (None = every device)."""
    for name in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if name not in environ:
            continue
        value = environ[name].strip()
        if value == "all":
            return name, None
        if value in ("", "none", "void", "-1"):
            return name, []
        return name, [v.strip() for v in value.split(",") if v.strip()]
    return "", None


def select_visible(devices: Sequence[GpuDevice],
                   environ: Mapping[str, str]) -> tuple[GpuDevice, ...]:
    """The devices the visibility variables allow, in the order they name them.

    Each selector is an index or a UUID (or a unique UUID prefix, as CUDA accepts);
    selectors that match no device are ignored.  ``NVIDIA_VISIBLE_DEVICES`` indices that
    the container runtime has already applied (NVML sees exactly that many devices) keep
    every device (see the module docstring).
    """
    name, wanted = _visible_filter(environ)
    if wanted is None:
        return tuple(devices)
    if (name == "NVIDIA_VISIBLE_DEVICES" and all(w.isdigit() for w in wanted)
            and len(set(wanted)) == len(devices)):
        return tuple(devices)  # the container runtime applied it: NVML renumbered them
    chosen: list[GpuDevice] = []
    for selector in wanted:
        matches = [d for d in devices
                   if (selector.isdigit() and d.index == int(selector))
                   or (not selector.isdigit() and d.uuid.startswith(selector))]
        if len(matches) == 1 and matches[0] not in chosen:
            chosen.append(matches[0])
    return tuple(chosen)


def nvml_devices() -> tuple[GpuDevice, ...]:
    """Every GPU NVML sees; empty when NVML or its driver is missing (or fails)."""
    try:
        import pynvml
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return ()
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            devices.append(GpuDevice(index, _text(uuid), _text(name), int(memory)))
        return tuple(devices)
    except pynvml.NVMLError:
        return ()
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ------------------------------------------------------------------------------ inventory


def take_inventory(*, no_swap: bool = False, environ: Mapping[str, str] | None = None,
                   table: ResourceTable = DEFAULT_TABLE,
                   limits: CgroupLimits | None = None,
                   devices: Sequence[GpuDevice] | None = None) -> Inventory:
    """Measure the host now.

    :param no_swap: report zero swap (``--no-swap``).
    :param environ: for the GPU visibility variables (default ``os.environ``).
    :param table: the resource table to report (the env overrides already applied).
    :param limits: cgroup limits (default: read this process's).
    :param devices: the GPUs NVML sees (default: ask NVML).
    """
    env = os.environ if environ is None else environ
    cg = read_cgroup_limits() if limits is None else limits
    vm = psutil.virtual_memory()
    physical, used = int(vm.total), int(vm.total - vm.available)
    if cg.memory is not None and cg.memory < physical:
        physical = cg.memory
        used = min(physical, cg.memory_used if cg.memory_used is not None else used)
    swap_total, swap_used = 0, 0
    if not no_swap:
        sw = psutil.swap_memory()
        swap_total, swap_used = int(sw.total), int(sw.used)
        if cg.swap is not None and cg.swap < swap_total:
            swap_total, swap_used = cg.swap, min(swap_used, cg.swap)
    gpus = select_visible(nvml_devices() if devices is None else devices, env)
    resources = WorkerResources(
        cpus=usable_cpus(cg), mem_physical=max(1, physical), mem_used=max(0, used),
        mem_swap=swap_total, mem_swap_used=swap_used,
        gpus=tuple(g.info for g in gpus), table=table)
    return Inventory(resources, gpus, machine_id(), cpu_set())
