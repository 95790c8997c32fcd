"""The PreCommit2 hook's logic: settings from the environment, engine, result.

Settings (read when a phase starts, in the phase's child process):

* ``FIL_PROOFS_USE_GPU_COLUMN_BUILDER`` / ``FIL_PROOFS_USE_GPU_TREE_BUILDER``: ``0`` moves
  the column hashes / the trees (and the encoding) back to the reference code; unset
  means on, as choosing this backend asks for the GPU.  With both off the backend
  declines PreCommit2 and the next backend runs it.
* ``SEALAGENT_GPU_CHUNK_NODES``: leaves per tree chunk (default 2^24; 2^22–2^24 suit most
  GPUs); column jobs stage at most 1 GiB of layers
  (:func:`~sealagent_gpu_cupy.builders.column_chunk_nodes`).  Every job is staged in
  pinned host memory and on the GPU, twice (two lanes).
* ``CUDA_VISIBLE_DEVICES``: the engine uses the first GPU it leaves visible.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from sealagent.envvars import env_flag, env_int
from sealagent.errors import PluginUnavailableError
from sealagent.phases import PreCommit2Request, PreCommit2Result
from sealagent.proofs import (
    PreCommit1Output,
    seal_pre_commit_phase2,
    sealed_commitment_to_cid,
    unsealed_commitment_to_cid,
)
from sealagent_gpu_cupy.builders import (
    DEFAULT_CHUNK_NODES,
    EngineFactory,
    Placement,
    engine_kernels,
)

COLUMN_BUILDER_ENV: Final = "FIL_PROOFS_USE_GPU_COLUMN_BUILDER"
TREE_BUILDER_ENV: Final = "FIL_PROOFS_USE_GPU_TREE_BUILDER"
CHUNK_NODES_ENV: Final = "SEALAGENT_GPU_CHUNK_NODES"


def _logger() -> Any:
    """The plugin's logger (structlog is imported only when a phase runs here)."""
    import structlog

    return structlog.get_logger(__name__)


def placement_from_env(environ: Mapping[str, str]) -> Placement:
    """Which parts run on the GPU (see the module docstring).

    :raises ConfigError: a variable holds something other than a switch.
    """
    def switch(name: str) -> bool:
        return env_flag(environ, name) if name in environ else True

    return Placement(columns=switch(COLUMN_BUILDER_ENV), trees=switch(TREE_BUILDER_ENV))


def chunk_nodes_from_env(environ: Mapping[str, str]) -> int:
    """Leaves per chunk (``$SEALAGENT_GPU_CHUNK_NODES``, at least 2)."""
    return env_int(environ, CHUNK_NODES_ENV, DEFAULT_CHUNK_NODES, minimum=2)


def run_precommit2(request: PreCommit2Request, open_engine: EngineFactory,
                   environ: Mapping[str, str] | None = None) -> PreCommit2Result | None:
    """PreCommit2 on the engine ``open_engine()`` gives; ``None`` (decline) when it cannot run.

    Declines when the environment places nothing on the GPU, or when no engine opens here
    (e.g. the phase was granted no GPU); a warning says why.
    """
    environ = os.environ if environ is None else environ
    placement = placement_from_env(environ)
    chunk_nodes = chunk_nodes_from_env(environ)
    if not placement.any:
        _logger().warning("gpu-cupy declines PreCommit2: GPU column and tree builders are off",
                          columns_env=COLUMN_BUILDER_ENV, trees_env=TREE_BUILDER_ENV)
        return None
    try:
        engine = open_engine()
    except PluginUnavailableError as exc:
        _logger().warning("gpu-cupy declines PreCommit2: no GPU here", reason=str(exc))
        return None
    _logger().info("gpu-cupy PreCommit2", device=engine.device_name,
                   columns=placement.columns, trees=placement.trees, chunk_nodes=chunk_nodes)
    kernels = engine_kernels(open_engine, placement, chunk_nodes,
                             name=f"gpu-cupy on {engine.device_name}")
    pc1 = PreCommit1Output.from_json(request.pc1_output)
    out = seal_pre_commit_phase2(pc1, request.paths.cache, request.paths.sealed,
                                 kernels=kernels)
    return PreCommit2Result(unsealed_commitment_to_cid(out.comm_d),
                            sealed_commitment_to_cid(out.comm_r))
