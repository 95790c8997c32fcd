"""The gpu-cupy plugin: availability without CUDA, settings, and PreCommit2 byte for byte.

PreCommit2 runs through the plugin's hook logic and pipeline with the kernels compiled as
host C (no GPU needed); the files must equal the ``cpu`` backend's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

import sealagent_gpu_cupy
from sealagent import hookimpl
from sealagent.errors import ConfigError, PluginUnavailableError
from sealagent.phases import BackendInfo, Phase, PreCommit2Request, PreCommit2Result
from sealagent.plugins import PluginSet
from sealagent.testing import (
    SectorInputs,
    assert_backend_matches_reference,
    phase_requests,
    seal_with_reference,
)
from sealagent.testing import sector_inputs as _sector_inputs
from sealagent_gpu_cupy.backend import (
    chunk_nodes_from_env,
    placement_from_env,
    run_precommit2,
)
from sealagent_gpu_cupy.builders import DEFAULT_CHUNK_NODES, Placement, column_chunk_nodes
from sealagent_gpu_cupy.chunks import Engine
from sealagent_gpu_cupy.device import probe_cuda
from sealagent_gpu_cupy.host import HostEngine, host_compiler

sector_inputs = _sector_inputs

needs_compiler = pytest.mark.skipif(host_compiler() is None,
                                    reason="no C compiler ($CC or cc) to build the host kernels")
without_gpu = pytest.mark.skipif(probe_cuda().device is not None,
                                 reason="this host has a usable CUDA GPU")


class HostBackend:
    """gpu-cupy's PreCommit2 with the host-compiled kernels and a given environment."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = dict(environ)

    @hookimpl
    def sealagent_backend_info(self) -> BackendInfo:
        return BackendInfo(name="gpu-cupy-host", description="host kernels", version="test")

    @hookimpl
    def sealagent_precommit2(self, request: PreCommit2Request) -> PreCommit2Result | None:
        return run_precommit2(request, HostEngine, self.environ)


# --------------------------------------------------------------------------------------
# Without CUDA


@without_gpu
def test_backend_info_says_why_it_cannot_run() -> None:
    info = sealagent_gpu_cupy.sealagent_backend_info()
    assert info.name == "gpu-cupy"
    assert not info.available
    assert info.reason and ("cupy" in info.reason or "CUDA" in info.reason)


@without_gpu
def test_warming_without_a_gpu_says_why() -> None:
    with pytest.raises(PluginUnavailableError):
        sealagent_gpu_cupy.sealagent_warm(lambda line: None)


@without_gpu
def test_plugins_command_lists_it_unavailable_with_the_reason() -> None:
    done = subprocess.run([sys.executable, "-m", "sealagent", "plugins", "--json"],
                          capture_output=True, text=True, check=True, timeout=120)
    records = {r["name"]: r for r in json.loads(done.stdout)}
    gpu = records["gpu-cupy"]
    assert gpu["available"] is False
    assert gpu["reason"].startswith(("cupy is not importable", "no usable CUDA GPU",
                                     "no CUDA GPU"))
    assert gpu["phases"] == ["PreCommit2"]


@without_gpu
def test_selection_skips_it_and_precommit2_falls_back_to_cpu() -> None:
    selection = PluginSet.load().select(["gpu-cupy"])
    assert "gpu-cupy" in selection.skipped
    assert selection.candidates(Phase.PRECOMMIT2) == ("cpu",)


# --------------------------------------------------------------------------------------
# Settings


def test_placement_defaults_to_the_gpu_and_honours_fil_proofs_switches() -> None:
    assert placement_from_env({}) == Placement(columns=True, trees=True)
    env = {"FIL_PROOFS_USE_GPU_COLUMN_BUILDER": "0", "FIL_PROOFS_USE_GPU_TREE_BUILDER": "1"}
    assert placement_from_env(env) == Placement(columns=False, trees=True)
    with pytest.raises(ConfigError, match="FIL_PROOFS_USE_GPU_TREE_BUILDER"):
        placement_from_env({"FIL_PROOFS_USE_GPU_TREE_BUILDER": "maybe"})


def test_chunk_nodes_setting() -> None:
    assert chunk_nodes_from_env({}) == DEFAULT_CHUNK_NODES
    assert chunk_nodes_from_env({"SEALAGENT_GPU_CHUNK_NODES": "4194304"}) == 1 << 22
    with pytest.raises(ConfigError, match="SEALAGENT_GPU_CHUNK_NODES"):
        chunk_nodes_from_env({"SEALAGENT_GPU_CHUNK_NODES": "1"})


def test_column_chunks_stay_within_the_staging_budget() -> None:
    assert column_chunk_nodes(1 << 24, 2) == 1 << 24
    assert column_chunk_nodes(1 << 24, 11) == 1 << 21
    assert column_chunk_nodes(1 << 20, 11) == 1 << 20
    assert column_chunk_nodes(8, 11) == 8


def _pc2_request(inputs: SectorInputs, root: Path) -> PreCommit2Request:
    state = seal_with_reference(inputs, root, (Phase.ADD_PIECE, Phase.PRECOMMIT1))
    (request,) = phase_requests(Phase.PRECOMMIT2, inputs, root, state)
    assert isinstance(request, PreCommit2Request)
    return request


def test_declines_when_both_builders_are_off(sector_inputs: SectorInputs,
                                             tmp_path: Path) -> None:
    def no_engine() -> Engine:
        raise AssertionError("no engine should be opened")

    env = {"FIL_PROOFS_USE_GPU_COLUMN_BUILDER": "0", "FIL_PROOFS_USE_GPU_TREE_BUILDER": "no"}
    assert run_precommit2(_pc2_request(sector_inputs, tmp_path), no_engine, env) is None


def test_declines_when_no_gpu_opens(sector_inputs: SectorInputs, tmp_path: Path) -> None:
    def no_gpu() -> Engine:
        raise PluginUnavailableError("no CUDA GPU")

    assert run_precommit2(_pc2_request(sector_inputs, tmp_path), no_gpu, {}) is None


# --------------------------------------------------------------------------------------
# PreCommit2 on the host kernels, against cpu


@needs_compiler
@pytest.mark.parametrize("environ", [
    {},
    {"SEALAGENT_GPU_CHUNK_NODES": "8"},
    {"FIL_PROOFS_USE_GPU_COLUMN_BUILDER": "0", "SEALAGENT_GPU_CHUNK_NODES": "16"},
    {"FIL_PROOFS_USE_GPU_TREE_BUILDER": "0", "SEALAGENT_GPU_CHUNK_NODES": "16"},
], ids=["one-chunk", "chunks-of-8", "cpu-columns", "cpu-trees"])
def test_precommit2_files_equal_cpu(sector_inputs: SectorInputs, tmp_path: Path,
                                    environ: dict[str, str]) -> None:
    (result,) = assert_backend_matches_reference(HostBackend(environ), Phase.PRECOMMIT2,
                                                 sector_inputs, tmp_path)
    assert isinstance(result, PreCommit2Result)
    cache = next((tmp_path / "sector").rglob("sc-02-data-tree-c.dat")).parent
    assert (cache / "sc-02-data-tree-r-last.dat").stat().st_size > 0
