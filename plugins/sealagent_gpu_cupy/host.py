"""The GPU kernels compiled as host C and called through ctypes.

The kernel source is written to build both ways (``kernels/fr.cuh``), so this runs the
very functions a GPU runs, one item after another instead of one per thread.  The tests
compare it with the reference Poseidon; it is also a :class:`~sealagent_gpu_cupy.chunks.
KernelOps`, so the whole PC2 pipeline (chunking, rows, files) runs on a machine without
a GPU.  It is not meant to be fast.

Builds are cached under ``$XDG_CACHE_HOME/sealagent/gpu-cupy-host`` (or ``~/.cache``),
keyed by the source's hash, the arity and the compiler.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from sealagent.errors import PluginUnavailableError
from sealagent_gpu_cupy.chunks import (
    ChunkJob,
    ChunkOutput,
    Done,
    JobKind,
    raise_if_bad,
    reduce_chunk,
    stack_inputs,
)
from sealagent_gpu_cupy.kernel_source import KERNEL_DIR, MAIN_SOURCE, define_options, source_digest
from sealagent_gpu_cupy.schedule import schedule_limbs

CC_ENV: Final = "CC"
"""The C compiler to use (default ``cc``)."""

FR_OPS: Final = {"mul": 0, "add": 1, "sub": 2, "to_mont": 3, "from_mont": 4, "pow5": 5,
                 "canonical": 6}
"""Operation codes of the ``fr_batch`` kernel."""

Nodes = npt.NDArray[np.uint8]
_u64 = ctypes.c_uint64
_ptr = ctypes.c_void_p


def host_compiler() -> str | None:
    """Path of the C compiler (``$CC`` or ``cc``), or ``None`` when there is none."""
    return shutil.which(os.environ.get(CC_ENV, "cc"))


def _cache_dir() -> Path:
    """Where host builds are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sealagent" / "gpu-cupy-host"


def build_host_library(arity: int) -> Path:
    """Compile the kernels for ``arity`` into a shared library (cached); return its path.

    :raises PluginUnavailableError: there is no C compiler, or it rejected the source.
    """
    compiler = host_compiler()
    if compiler is None:
        raise PluginUnavailableError("no C compiler ($CC or cc) to build the host kernels")
    target = _cache_dir() / source_digest() / f"poseidon-{arity}-{Path(compiler).name}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        command = [compiler, "-std=c11", "-O2", "-fPIC", "-shared", "-x", "c",
                   f"-I{KERNEL_DIR}", *define_options(arity), str(MAIN_SOURCE), "-o", str(built)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise PluginUnavailableError(
                f"{Path(compiler).name} failed on {MAIN_SOURCE.name}:\n{done.stderr.strip()}")
        built.replace(target)
    return target


def _pointer(array: npt.NDArray[np.generic]) -> int:
    """The address of a C-contiguous array's data."""
    if not array.flags.c_contiguous:
        raise ValueError("kernel arrays must be C-contiguous")
    return int(array.ctypes.data)


class HostKernels:
    """The kernels of one arity, compiled for the host (see the module docstring)."""

    def __init__(self, arity: int) -> None:
        """Build (or reuse) and load the library of ``arity``."""
        self.arity = arity
        self._lib = ctypes.CDLL(str(build_host_library(arity)))
        self._lib.poseidon_hash.argtypes = [_ptr, _ptr, _u64, _u64, _ptr, _u64, _ptr]
        self._lib.encode_hash.argtypes = [_ptr, _ptr, _ptr, _ptr, _ptr, _u64, _ptr]
        self._lib.fr_batch.argtypes = [ctypes.c_int, _ptr, _ptr, _ptr, _u64]
        for name in ("poseidon_hash", "encode_hash", "fr_batch"):
            getattr(self._lib, name).restype = None
        self._consts = np.ascontiguousarray(schedule_limbs(arity))

    def call(self, name: str, *args: int) -> None:
        """Call kernel ``name`` with raw arguments (addresses and integers), as a launch would."""
        getattr(self._lib, name)(*args)

    def hash(self, nodes: Nodes, item_stride: int, input_stride: int, count: int,
             bad: npt.NDArray[np.uint32]) -> Nodes:
        """``count`` hashes; input ``j`` of hash ``i`` is node ``i·item + j·input`` (strides)."""
        out = np.empty((count, 32), dtype=np.uint8)
        self._lib.poseidon_hash(_pointer(self._consts), _pointer(nodes), item_stride,
                                input_stride, _pointer(out), count, _pointer(bad))
        return out

    def encode_hash(self, key: Nodes, data: Nodes,
                    bad: npt.NDArray[np.uint32]) -> tuple[Nodes, Nodes]:
        """``replica = key + data (mod r)`` and the hash of each ``arity`` replica nodes."""
        replica = np.empty_like(key)
        out = np.empty((key.shape[0] // self.arity, 32), dtype=np.uint8)
        self._lib.encode_hash(_pointer(self._consts), _pointer(key), _pointer(data),
                              _pointer(replica), _pointer(out), out.shape[0], _pointer(bad))
        return replica, out

    def fr_batch(self, op: str, a: npt.NDArray[np.uint32],
                 b: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
        """Apply field operation ``op`` (:data:`FR_OPS`) to ``(n, 8)`` limb arrays."""
        out = np.zeros_like(a)
        self._lib.fr_batch(FR_OPS[op], _pointer(a), _pointer(b), _pointer(out), a.shape[0])
        return out


@cache
def host_kernels(arity: int) -> HostKernels:
    """The (cached) host build of ``arity``."""
    return HostKernels(arity)


class HostOps:
    """:class:`~sealagent_gpu_cupy.chunks.KernelOps` on numpy arrays, with one error flag."""

    def __init__(self) -> None:
        """Start with the flag clear."""
        self.bad = np.zeros(1, dtype=np.uint32)

    def hash(self, arity: int, nodes: Nodes, item_stride: int, input_stride: int,
             count: int) -> Nodes:
        """See :meth:`HostKernels.hash`."""
        return host_kernels(arity).hash(np.ascontiguousarray(nodes), item_stride,
                                        input_stride, count, self.bad)

    def encode_hash(self, arity: int, key: Nodes, data: Nodes) -> tuple[Nodes, Nodes]:
        """See :meth:`HostKernels.encode_hash`."""
        return host_kernels(arity).encode_hash(np.ascontiguousarray(key),
                                               np.ascontiguousarray(data), self.bad)


class HostEngine:
    """Runs chunk jobs with the host build, synchronously (for tests and CPU-only hosts)."""

    device_name = "host CPU (kernels compiled as C)"

    def submit(self, job: ChunkJob) -> Done:
        """Run ``job`` now."""
        ops = HostOps()
        out = ChunkOutput(None)
        inputs = stack_inputs(job.inputs, np.empty((len(job.inputs) * job.nodes, 32),
                                                   dtype=np.uint8))
        n = job.nodes
        key, data = (inputs[:n], inputs[n:]) if job.kind is JobKind.ENCODE else (inputs, None)
        out.leaves = reduce_chunk(ops, job, key, out.rows.__setitem__, second=data)
        raise_if_bad(int(ops.bad[0]), job)
        return Done(out)
