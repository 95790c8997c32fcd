"""``gpu-cupy``: PreCommit2's column hashes, tree_c and tree_r_last on a CUDA GPU.

The kernels (``kernels/*.cu``: 255-bit Montgomery arithmetic over the BLS12-381 scalar
field, Poseidon one hash per thread, tree rows, column hashes, the replica encoding fused
with tree_r_last's first row) are compiled with NVRTC through CuPy at the first
PreCommit2.  The files written are the reference's, byte for byte.

cupy is an optional extra (``pip install 'sealagent[gpu-cuda12]'`` or ``gpu-cuda13``) and
is imported lazily: importing this plugin never fails.  Without cupy or a GPU the backend
reports itself unavailable with the reason, and PreCommit2 runs on the next backend.
Every other phase is left to the other backends.
"""

from __future__ import annotations

from sealagent import __version__, hookimpl
from sealagent.phases import BackendInfo, PreCommit2Request, PreCommit2Result
from sealagent_gpu_cupy.backend import run_precommit2
from sealagent_gpu_cupy.device import open_cuda_engine, probe_cuda

NAME = "gpu-cupy"


@hookimpl
def sealagent_backend_info() -> BackendInfo:
    """Available when cupy imports and sees a CUDA GPU; the description names the GPU."""
    probe = probe_cuda()
    if probe.device is None:
        return BackendInfo(name=NAME, version=__version__,
                           description="PreCommit2 column and tree building on a CUDA GPU",
                           available=False, reason=probe.reason)
    return BackendInfo(name=NAME, version=__version__,
                       description=f"PreCommit2 column and tree building on {probe.device}")


@hookimpl
def sealagent_precommit2(request: PreCommit2Request) -> PreCommit2Result | None:
    """tree_c, the replica and tree_r_last on the GPU; declines when no GPU opens."""
    return run_precommit2(request, open_cuda_engine)
