"""gpu-cupy on a real CUDA GPU (``pytest -m gpu``): kernels, PreCommit2 and device choice."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import sealagent_gpu_cupy
from sealagent.phases import Phase, PreCommit2Request
from sealagent.plugins import PluginSet, run_phase_in_subprocess
from sealagent.proofs.field import R
from sealagent.proofs.poseidon import poseidon_hash_level
from sealagent.testing import (
    SectorInputs,
    assert_backend_matches_reference,
    phase_requests,
    seal_with_reference,
)
from sealagent.testing import sector_inputs as _sector_inputs
from sealagent_gpu_cupy.chunks import ChunkJob, JobKind
from sealagent_gpu_cupy.device import open_cuda_engine, probe_cuda

sector_inputs = _sector_inputs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(probe_cuda().device is None,
                       reason=f"no CUDA GPU: {probe_cuda().reason}"),
]


def _nodes(count: int, rng: random.Random) -> np.ndarray:
    raw = b"".join(rng.randrange(R).to_bytes(32, "little") for _ in range(count))
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32).copy()


def test_warm_compiles_every_porep_arity() -> None:
    lines: list[str] = []
    sealagent_gpu_cupy.sealagent_warm(lines.append)
    assert any("arity 11" in line for line in lines)


def test_engine_names_the_device() -> None:
    assert "CUDA device 0" in open_cuda_engine().device_name


@pytest.mark.parametrize("arity", [2, 4, 8, 11])
def test_rows_match_reference(arity: int) -> None:
    rng = random.Random(arity)
    leaves = _nodes(arity**3, rng)
    engine = open_cuda_engine()
    out = engine.submit(ChunkJob(JobKind.TREE, (leaves,), arity, 3)).result()
    row = leaves
    for level in (1, 2, 3):
        row = poseidon_hash_level(row, arity)
        assert out.rows[level].tobytes() == row.tobytes()


def test_columns_and_encoding_match_reference() -> None:
    rng = random.Random(11)
    layers = tuple(_nodes(4096, rng) for _ in range(11))
    engine = open_cuda_engine()
    columns = engine.submit(ChunkJob(JobKind.COLUMNS, layers, 8, 0)).result().leaves
    expected = poseidon_hash_level(np.stack(layers, axis=1).reshape(-1, 32), 11)
    assert columns is not None and columns.tobytes() == expected.tobytes()
    out = engine.submit(ChunkJob(JobKind.ENCODE, layers[:2], 8, 1)).result()
    assert out.leaves is not None
    assert out.rows[1].tobytes() == poseidon_hash_level(out.leaves, 8).tobytes()


@pytest.mark.parametrize("chunk", ["16777216", "8"])
def test_precommit2_matches_cpu(sector_inputs: SectorInputs, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch, chunk: str) -> None:
    monkeypatch.setenv("SEALAGENT_GPU_CHUNK_NODES", chunk)
    assert_backend_matches_reference("gpu-cupy", Phase.PRECOMMIT2, sector_inputs, tmp_path)


def test_no_visible_gpu_falls_back_to_cpu(sector_inputs: SectorInputs,
                                          tmp_path: Path) -> None:
    state = seal_with_reference(sector_inputs, tmp_path, (Phase.ADD_PIECE, Phase.PRECOMMIT1))
    (request,) = phase_requests(Phase.PRECOMMIT2, sector_inputs, tmp_path, state)
    assert isinstance(request, PreCommit2Request)
    selection = PluginSet.load().select(["gpu-cupy"])
    with run_phase_in_subprocess(Phase.PRECOMMIT2, request, selection, gpus=[]) as child:
        outcome = child.wait()
    assert outcome.backend == "cpu"
