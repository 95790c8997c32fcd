"""The CUDA engine's lanes, streams and buffers, on a stand-in for cupy.

The stand-in keeps "device" arrays in host memory and "launches" the kernels compiled as
host C (the same source), so the engine code that queues copies and kernels, splits the
outputs and checks the error flag runs here; only the GPU itself is missing.
"""

from __future__ import annotations

import importlib.util
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from sealagent import hookimpl
from sealagent.errors import CorruptDataError, PluginError
from sealagent.phases import BackendInfo, Phase, PreCommit2Request, PreCommit2Result
from sealagent.proofs.field import R
from sealagent.proofs.poseidon import poseidon_hash_level
from sealagent.testing import SectorInputs, assert_backend_matches_reference
from sealagent.testing import sector_inputs as _sector_inputs
from sealagent_gpu_cupy.backend import run_precommit2
from sealagent_gpu_cupy.chunks import ChunkJob, JobKind
from sealagent_gpu_cupy.device import CudaEngine
from sealagent_gpu_cupy.host import host_compiler, host_kernels

sector_inputs = _sector_inputs

pytestmark = pytest.mark.skipif(host_compiler() is None,
                                reason="no C compiler ($CC or cc) to build the host kernels")


class DeviceArray(np.ndarray):
    """A "device" array: host memory with cupy's transfer methods."""

    def set(self, arr: np.ndarray, stream: object = None) -> None:
        self[...] = arr

    def get(self, stream: object = None, out: np.ndarray | None = None,
            blocking: bool = True) -> np.ndarray:
        if out is None:
            return np.array(self)
        out[...] = self
        return out


class Stream:
    """Work runs at once, so a stream has nothing to wait for; it counts synchronisations."""

    synchronized = 0

    def __init__(self, non_blocking: bool = False) -> None:
        self.non_blocking = non_blocking

    def synchronize(self) -> None:
        Stream.synchronized += 1

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class RawModule:
    """Kernels of the arity named in the options, launched on the host build."""

    compiled: ClassVar[list[int]] = []

    def __init__(self, code: str, options: tuple[str, ...]) -> None:
        assert "poseidon_hash" in code
        (arity,) = (int(m.group(1)) for o in options
                    if (m := re.fullmatch(r"-DPOSEIDON_ARITY=(\d+)", o)))
        self.kernels = host_kernels(arity)
        RawModule.compiled.append(arity)

    def get_function(self, name: str) -> Any:
        def launch(grid: tuple[int], block: tuple[int], args: tuple[Any, ...]) -> None:
            assert grid[0] >= 1 and block[0] >= 1
            self.kernels.call(name, *(int(a.ctypes.data) if isinstance(a, np.ndarray)
                                      else int(a) for a in args))
        return launch


class Event:
    """A CUDA event: the host time when it was recorded."""

    def __init__(self) -> None:
        self.at = 0.0

    def record(self) -> None:
        self.at = time.perf_counter()

    def synchronize(self) -> None:
        return None


class OutOfMemoryError(Exception):
    """cupy's error when device memory runs out."""


def _device(array: np.ndarray) -> DeviceArray:
    return np.ascontiguousarray(array).view(DeviceArray)


fake_cupy = SimpleNamespace(
    uint8=np.uint8, uint32=np.uint32,
    empty=lambda shape, dtype: _device(np.empty(shape, dtype)),
    zeros=lambda shape, dtype: _device(np.zeros(shape, dtype)),
    empty_like=lambda a: _device(np.empty_like(a)),
    asarray=lambda a: _device(np.array(a)),
    RawModule=RawModule,
    cuda=SimpleNamespace(
        Stream=Stream,
        Event=Event,
        get_elapsed_time=lambda start, end: (end.at - start.at) * 1000,
        memory=SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
        Device=lambda index: SimpleNamespace(use=lambda: None),
        alloc_pinned_memory=bytearray,
        runtime=SimpleNamespace(
            getDeviceCount=lambda: 1,
            getDeviceProperties=lambda index: {"name": b"Stand-in GPU",
                                               "multiProcessorCount": 2}),
    ),
)


@pytest.fixture
def engine() -> Iterator[CudaEngine]:
    yield CudaEngine(fake_cupy)


def _nodes(count: int, rng: random.Random) -> np.ndarray:
    raw = b"".join(rng.randrange(R).to_bytes(32, "little") for _ in range(count))
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32).copy()


def test_engine_names_the_device(engine: CudaEngine) -> None:
    assert engine.device_name == "Stand-in GPU (CUDA device 0)"


def test_jobs_alternate_lanes_and_outputs_stay_until_the_lane_is_reused(
        engine: CudaEngine) -> None:
    rng = random.Random(1)
    first, second = _nodes(64, rng), _nodes(64, rng)
    a = engine.submit(ChunkJob(JobKind.TREE, (first,), 8, 2))
    b = engine.submit(ChunkJob(JobKind.TREE, (second,), 8, 2))
    for pending, leaves in ((a, first), (b, second)):
        out = pending.result()
        row = poseidon_hash_level(leaves, 8)
        assert out.rows[1].tobytes() == row.tobytes()
        assert out.rows[2].tobytes() == poseidon_hash_level(row, 8).tobytes()


def test_engines_share_the_compiled_kernels() -> None:
    leaves = _nodes(16, random.Random(4))
    for _ in range(3):
        CudaEngine(fake_cupy).submit(ChunkJob(JobKind.TREE, (leaves,), 4, 2)).result()
    assert RawModule.compiled.count(4) == 1


def test_columns_and_encoding(engine: CudaEngine) -> None:
    rng = random.Random(2)
    layers = tuple(_nodes(64, rng) for _ in range(11))
    columns = engine.submit(ChunkJob(JobKind.COLUMNS, layers, 8, 1)).result()
    expected = poseidon_hash_level(np.stack(layers, axis=1).reshape(-1, 32), 11)
    assert columns.leaves is not None and columns.leaves.tobytes() == expected.tobytes()
    assert columns.rows[1].tobytes() == poseidon_hash_level(expected, 8).tobytes()
    encoded = engine.submit(ChunkJob(JobKind.ENCODE, layers[:2], 8, 2, keep_from=2)).result()
    assert set(encoded.rows) == {2}
    assert encoded.leaves is not None
    assert poseidon_hash_level(poseidon_hash_level(encoded.leaves, 8), 8).tobytes() \
        == encoded.rows[2].tobytes()


def test_a_bad_node_is_reported_when_the_result_is_collected(engine: CudaEngine) -> None:
    leaves = _nodes(8, random.Random(3))
    leaves[2] = 0xFF
    pending = engine.submit(ChunkJob(JobKind.TREE, (leaves,), 8, 1))
    with pytest.raises(CorruptDataError):
        pending.result()


def test_running_out_of_gpu_memory_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = CudaEngine(fake_cupy)

    def no_memory(shape: tuple[int, ...], dtype: object) -> DeviceArray:
        raise OutOfMemoryError("out of memory allocating 1 GiB")

    monkeypatch.setattr(fake_cupy, "empty", no_memory)
    with pytest.raises(PluginError, match="SEALAGENT_GPU_CHUNK_NODES"):
        engine.submit(ChunkJob(JobKind.TREE, (_nodes(8, random.Random(5)),), 8, 1))


def test_kernel_benchmark_measures_and_checks_against_the_reference() -> None:
    path = Path(__file__).resolve().parents[2] / "bench" / "gpu_kernels.py"
    spec = importlib.util.spec_from_file_location("gpu_kernels_bench", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = bench.measure(fake_cupy, 8, 64, 2)
    assert row["matches_reference"] is True
    assert row["ns_per_hash"] > 0
    seconds = bench.projected_pc2_seconds({2: 100.0, 8: 300.0}, "8MiB")
    assert seconds == pytest.approx((2**18 * 100 + 2 * (2**18 - 1) // 7 * 300) / 1e9)


class StandInBackend:
    """gpu-cupy's PreCommit2 on the CUDA engine over the stand-in cupy."""

    @hookimpl
    def sealagent_backend_info(self) -> BackendInfo:
        return BackendInfo(name="gpu-cupy-stand-in", description="", version="test")

    @hookimpl
    def sealagent_precommit2(self, request: PreCommit2Request) -> PreCommit2Result | None:
        return run_precommit2(request, lambda: CudaEngine(fake_cupy),
                              {"SEALAGENT_GPU_CHUNK_NODES": "8"})


def test_precommit2_on_the_engine_equals_cpu(sector_inputs: SectorInputs,
                                             tmp_path: Path) -> None:
    before = Stream.synchronized
    assert_backend_matches_reference(StandInBackend(), Phase.PRECOMMIT2, sector_inputs,
                                     tmp_path)
    assert Stream.synchronized > before
