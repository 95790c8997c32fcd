"""The CUDA engine: the kernels compiled with NVRTC and run through CuPy.

cupy is imported only here, and only when an engine is opened (:func:`open_cuda_engine`)
or the host is probed (:func:`probe_cuda`), so importing the plugin never needs it.

Each engine has two *lanes*, each with its own CUDA stream, page-locked (pinned) host
buffers and error flag.  Submitting a job copies its inputs from the memory-mapped
files into the lane's pinned buffer, then queues on the lane's stream: one host-to-device
copy, the kernels of the chunk's subtree, and device-to-host copies of the rows the file
keeps into pinned memory.  Jobs alternate between the lanes, so one chunk's transfers
overlap the other's kernels, and the host prepares the next chunk meanwhile.

The GPU is the first one ``CUDA_VISIBLE_DEVICES`` leaves visible (the agent sets it to
the GPU the scheduler granted).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np

from sealagent.errors import PluginError, PluginUnavailableError
from sealagent_gpu_cupy.backend import CHUNK_NODES_ENV
from sealagent_gpu_cupy.chunks import (
    ChunkJob,
    ChunkOutput,
    JobKind,
    Nodes,
    raise_if_bad,
    reduce_chunk,
    stack_inputs,
)
from sealagent_gpu_cupy.kernel_source import (
    KERNEL_NAMES,
    MAIN_SOURCE,
    nvrtc_options,
    source_text,
)
from sealagent_gpu_cupy.schedule import porep_arities, schedule_limbs

THREADS_PER_BLOCK: Final = 128
"""Threads per block of every kernel (one hash per thread)."""

BLOCKS_PER_SM: Final = 16
"""Blocks per multiprocessor at most; the kernels loop over the remaining items."""

INSTALL_HINT: Final = "install the extra: pip install 'sealagent[gpu-cuda12]' (or gpu-cuda13)"


@dataclass(frozen=True)
class CudaProbe:
    """What :func:`probe_cuda` found: a device name, or why there is none."""

    device: str | None
    reason: str | None = None


@cache
def probe_cuda() -> CudaProbe:
    """Whether cupy imports and sees a CUDA GPU; never raises (cached per process)."""
    try:
        import cupy
    except Exception as exc:
        return CudaProbe(None, f"cupy is not importable ({type(exc).__name__}: {exc}); "
                               f"{INSTALL_HINT}")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    shown = "" if visible is None else f"; CUDA_VISIBLE_DEVICES={visible!r}"
    try:
        if int(cupy.cuda.runtime.getDeviceCount()) < 1:
            return CudaProbe(None, f"no CUDA GPU{shown}")
        return CudaProbe(device_name(cupy, 0))
    except Exception as exc:
        return CudaProbe(None, f"no usable CUDA GPU ({type(exc).__name__}: {exc}{shown})")


def device_name(cupy: Any, index: int) -> str:
    """``NVIDIA H100 80GB HBM3 (CUDA device 0)``."""
    name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
    return f"{name.decode() if isinstance(name, bytes) else name} (CUDA device {index})"


class KernelModules:
    """The kernels compiled per arity (on first use), with their constants on the device."""

    def __init__(self, cupy: Any) -> None:
        """Nothing is compiled yet."""
        self._cp = cupy
        self._modules: dict[int, tuple[Any, Any]] = {}

    def get(self, arity: int) -> tuple[Any, Any]:
        """``(module, constants)`` of ``arity``; compiles with NVRTC on first use."""
        if arity not in self._modules:
            module = self._cp.RawModule(code=source_text(), options=nvrtc_options(arity))
            self._modules[arity] = (module, self._cp.asarray(schedule_limbs(arity)))
        return self._modules[arity]


_SHARED_MODULES: dict[int, KernelModules] = {}


def shared_modules(cupy: Any) -> KernelModules:
    """The process' :class:`KernelModules` for this cupy (compiled once, used by every engine)."""
    return _SHARED_MODULES.setdefault(id(cupy), KernelModules(cupy))


class CupyOps:
    """:class:`~sealagent_gpu_cupy.chunks.KernelOps` on cupy arrays, on one stream."""

    def __init__(self, cupy: Any, modules: KernelModules, bad: Any, blocks: int) -> None:
        """Launch on the current stream, flagging bad nodes in ``bad``."""
        self._cp, self._modules, self._bad, self._blocks = cupy, modules, bad, blocks

    def _launch(self, arity: int, name: str, count: int, *args: Any) -> None:
        """Run kernel ``name`` of ``arity`` over ``count`` items."""
        module, consts = self._modules.get(arity)
        blocks = max(1, min(self._blocks, math.ceil(count / THREADS_PER_BLOCK)))
        module.get_function(name)((blocks,), (THREADS_PER_BLOCK,), (consts, *args))

    def hash(self, arity: int, nodes: Any, item_stride: int, input_stride: int,
             count: int) -> Any:
        """See :meth:`sealagent_gpu_cupy.host.HostKernels.hash`."""
        out = self._cp.empty((count, 32), dtype=self._cp.uint8)
        self._launch(arity, "poseidon_hash", count, nodes, np.uint64(item_stride),
                     np.uint64(input_stride), out, np.uint64(count), self._bad)
        return out

    def encode_hash(self, arity: int, key: Any, data: Any) -> tuple[Any, Any]:
        """See :meth:`sealagent_gpu_cupy.host.HostKernels.encode_hash`."""
        replica = self._cp.empty_like(key)
        count = key.shape[0] // arity
        out = self._cp.empty((count, 32), dtype=self._cp.uint8)
        self._launch(arity, "encode_hash", count, key, data, replica, out,
                     np.uint64(count), self._bad)
        return replica, out


class _PinnedBuffer:
    """A growable page-locked host buffer."""

    def __init__(self, cupy: Any) -> None:
        self._cp = cupy
        self._array = np.empty(0, dtype=np.uint8)

    def view(self, nbytes: int) -> Nodes:
        """The first ``nbytes`` bytes as ``(nbytes / 32, 32)`` (reallocated when too small)."""
        if self._array.size < nbytes:
            memory = self._cp.cuda.alloc_pinned_memory(nbytes)
            self._array = np.frombuffer(memory, dtype=np.uint8, count=nbytes)
        return self._array[:nbytes].reshape(-1, 32)


class _Lane:
    """One stream with its pinned buffers; runs one job at a time."""

    def __init__(self, cupy: Any, modules: KernelModules, blocks: int) -> None:
        self._cp, self._modules, self._blocks = cupy, modules, blocks
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._input, self._output = _PinnedBuffer(cupy), _PinnedBuffer(cupy)
        self._bad = cupy.zeros(1, dtype=cupy.uint32)
        # Pinned, so that copying the flag back does not block the host.
        self._bad_host = np.frombuffer(cupy.cuda.alloc_pinned_memory(4), dtype=np.uint32,
                                       count=1)

    def run(self, job: ChunkJob) -> _CudaPending:
        """Queue ``job`` on this lane's stream (waits for the lane's previous job first)."""
        n = job.nodes
        self.stream.synchronize()
        staged = stack_inputs(job.inputs, self._input.view(len(job.inputs) * n * 32))
        # Rows that come back: the leaves the job computes, then each kept row.
        sizes = [n] if job.kind is not JobKind.TREE else []
        sizes += [n // job.arity**level for level in range(1, job.levels + 1)
                  if job.kept(level)]
        out_host = self._output.view(sum(sizes) * 32)
        try:
            leaves, kept, host_parts = self._queue(job, staged, out_host)
        except self._cp.cuda.memory.OutOfMemoryError as exc:
            raise PluginError(
                f"the GPU has no memory for a {job.kind.value} chunk of {n} nodes ({exc}); "
                f"set {CHUNK_NODES_ENV} lower") from exc
        output = ChunkOutput(host_parts[0] if leaves is not None else None)
        output.rows = dict(zip(kept, host_parts[1 if leaves is not None else 0 :],
                               strict=True))
        return _CudaPending(self, job, output)

    def _queue(self, job: ChunkJob, staged: Nodes,
               out_host: Nodes) -> tuple[Any, dict[int, Any], list[Nodes]]:
        """Queue the copy in, the kernels and the copies out on the lane's stream."""
        cp, n = self._cp, job.nodes
        with self.stream:
            device_in = cp.empty(staged.shape, dtype=cp.uint8)
            device_in.set(staged, stream=self.stream)
            self._bad.fill(0)
            ops = CupyOps(cp, self._modules, self._bad, self._blocks)
            kept: dict[int, Any] = {}
            key, data = ((device_in[:n], device_in[n:]) if job.kind is JobKind.ENCODE
                         else (device_in, None))
            leaves = reduce_chunk(ops, job, key, kept.__setitem__, second=data)
            parts = ([leaves] if leaves is not None else []) + list(kept.values())
            offset, host_parts = 0, []
            for part in parts:
                target = out_host[offset : offset + part.shape[0]]
                part.get(stream=self.stream, out=target, blocking=False)
                host_parts.append(target)
                offset += part.shape[0]
            self._bad.get(stream=self.stream, out=self._bad_host, blocking=False)
        return leaves, kept, host_parts

    def check(self, job: ChunkJob) -> None:
        """Wait for the lane and raise if a kernel flagged a bad node."""
        self.stream.synchronize()
        raise_if_bad(int(self._bad_host[0]), job)


@dataclass
class _CudaPending:
    """A job queued on a lane."""

    lane: _Lane
    job: ChunkJob
    output: ChunkOutput

    def result(self) -> ChunkOutput:
        """Wait for the job; the arrays are the lane's pinned buffers."""
        self.lane.check(self.job)
        return self.output


class CudaEngine:
    """Runs chunk jobs on the first visible CUDA GPU, alternating two lanes."""

    def __init__(self, cupy: Any) -> None:
        """Use device 0 of those ``CUDA_VISIBLE_DEVICES`` leaves."""
        cupy.cuda.Device(0).use()
        self._name = device_name(cupy, 0)
        sms = int(cupy.cuda.runtime.getDeviceProperties(0)["multiProcessorCount"])
        modules = shared_modules(cupy)
        self._lanes = [_Lane(cupy, modules, sms * BLOCKS_PER_SM) for _ in range(2)]
        self._turn = 0

    @property
    def device_name(self) -> str:
        """The GPU, e.g. ``NVIDIA H100 80GB HBM3 (CUDA device 0)``."""
        return self._name

    def submit(self, job: ChunkJob) -> _CudaPending:
        """Queue ``job`` on the next lane."""
        lane = self._lanes[self._turn]
        self._turn = 1 - self._turn
        return lane.run(job)


def compile_ptx(arity: int, arch: str = "compute_80") -> str:
    """Compile the kernels of ``arity`` to PTX with NVRTC; needs cupy's NVRTC, not a GPU.

    :raises PluginUnavailableError: cupy or NVRTC is missing.
    :raises PluginError: NVRTC rejected the source (the message holds its log).
    """
    try:
        from cupy.cuda import nvrtc
    except Exception as exc:
        raise PluginUnavailableError(f"cupy's NVRTC is not importable ({exc}); "
                                     f"{INSTALL_HINT}") from None
    try:
        program = nvrtc.createProgram(source_text(), MAIN_SOURCE.name, [], [])
    except Exception as exc:
        raise PluginUnavailableError(f"NVRTC is not usable: {exc}") from None
    try:
        nvrtc.compileProgram(program, [*nvrtc_options(arity), f"--gpu-architecture={arch}"])
        ptx = nvrtc.getPTX(program)
    except nvrtc.NVRTCError as exc:
        raise PluginError(f"NVRTC rejected {MAIN_SOURCE.name} (arity {arity}): {exc}\n"
                          f"{nvrtc.getProgramLog(program)}") from None
    finally:
        nvrtc.destroyProgram(program)
    return ptx.decode() if isinstance(ptx, bytes) else str(ptx)


def kernel_cache_dir() -> Path:
    """Where cupy keeps compiled kernels (``$CUPY_CACHE_DIR``, default ``~/.cupy/kernel_cache``)."""
    return Path(os.environ.get("CUPY_CACHE_DIR") or Path.home() / ".cupy" / "kernel_cache")


def warm_kernels(progress: Callable[[str], None],
                 arities: Sequence[int] = porep_arities()) -> None:
    """Compile and load the kernels of ``arities`` on the GPU (NVRTC, into cupy's cache).

    :raises PluginUnavailableError: there is no GPU here.
    """
    engine = open_cuda_engine()
    progress(f"kernel cache {kernel_cache_dir()}")
    import cupy

    modules = shared_modules(cupy)
    for arity in arities:
        progress(f"Poseidon arity {arity} for {engine.device_name} …")
        module, _ = modules.get(arity)
        for name in KERNEL_NAMES:
            module.get_function(name)


def open_cuda_engine() -> CudaEngine:
    """The CUDA engine, or PluginUnavailableError saying why there is none."""
    probe = probe_cuda()
    if probe.device is None:
        raise PluginUnavailableError(probe.reason or "no CUDA GPU")
    import cupy

    return CudaEngine(cupy)
