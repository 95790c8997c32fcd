"""``gpu-cupy``: PreCommit2's column hashes, tree_c and tree_r_last on a CUDA GPU.

The kernels (``kernels/*.cu``: 255-bit Montgomery arithmetic over the BLS12-381 scalar
field, Poseidon one hash per thread, tree rows, column hashes, the replica encoding fused
with tree_r_last's first row) are compiled with NVRTC through CuPy at the first
PreCommit2.  The files written are the reference's, byte for byte.

cupy is an optional extra (``pip install 'sealagent[gpu-cuda12]'`` or ``gpu-cuda13``) and
is imported lazily: importing this plugin never fails.  The first use compiles the
kernels (``sealagent plugins --warm gpu-cupy`` does it ahead; cupy keeps them in its
cache).  Without cupy or a GPU the backend reports itself unavailable with the reason,
and PreCommit2 runs on the next backend.
Every other phase is left to the other backends.
"""

from __future__ import annotations

from collections.abc import Callable

from sealagent import __version__, hookimpl
from sealagent.phases import BackendInfo, PreCommit2Request, PreCommit2Result
from sealagent_gpu_cupy.backend import run_precommit2
from sealagent_gpu_cupy.device import (
    kernel_cache_dir,
    open_cuda_engine,
    probe_cuda,
    warm_kernels,
)

NAME = "gpu-cupy"


@hookimpl
def sealagent_backend_info() -> BackendInfo:
    """Available when cupy imports and sees a CUDA GPU; the description names the GPU."""
    probe = probe_cuda()
    cache = str(kernel_cache_dir())
    if probe.device is None:
        return BackendInfo(name=NAME, version=__version__,
                           description="PreCommit2 column and tree building on a CUDA GPU",
                           available=False, reason=probe.reason, kernel_cache=cache)
    return BackendInfo(name=NAME, version=__version__,
                       description=f"PreCommit2 column and tree building on {probe.device}",
                       kernel_cache=cache)


@hookimpl
def sealagent_warm(progress: Callable[[str], None]) -> None:
    """Compile the kernels of every arity PoRep uses with NVRTC (kept in cupy's cache)."""
    warm_kernels(progress)


@hookimpl
def sealagent_precommit2(request: PreCommit2Request) -> PreCommit2Result | None:
    """tree_c, the replica and tree_r_last on the GPU; declines when no GPU opens."""
    return run_precommit2(request, open_cuda_engine)
