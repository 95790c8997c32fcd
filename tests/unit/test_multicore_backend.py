"""The ``multicore`` backend: byte-identical to ``cpu``, exact thread use, kernel cache.

Compiled kernels live in the session's kernel cache (``tests/conftest.py``): the first
test run on a machine compiles them once (about a minute), later runs load them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from sealagent.errors import InvalidInputError
from sealagent.phases import Phase
from sealagent.plugins import PluginSet
from sealagent.proofs.field import R
from sealagent.proofs.graph import StackedGraph
from sealagent.proofs.labels import label_layer
from sealagent.proofs.poseidon import poseidon_hash_level
from sealagent.testing import SectorInputs, assert_sealing_matches_reference
from sealagent.vocab.registry import resolve_proof

pytest.importorskip("numba", reason="the multicore backend needs numba (sealagent[multicore])")

import sealagent_multicore
from sealagent_multicore import environment

COMPILED = {Phase.PRECOMMIT1, Phase.PRECOMMIT2, Phase.UNSEAL}


def _inputs(directory: Path, proof: str, data: str) -> SectorInputs:
    """Deal data (two random pieces) or a committed-capacity sector (one piece of zeros)."""
    inputs = SectorInputs.create(directory, proof=proof)
    if data == "deal":
        return inputs
    unpadded = resolve_proof(proof).sector_size // 128 * 127
    zeros = directory / "zeros.dat"
    with zeros.open("wb") as f:
        f.truncate(unpadded)
    return dataclasses.replace(inputs, piece_files=(str(zeros),), piece_sizes=(unpadded,))


def _assert_identical(tmp_path: Path, proof: str, data: str) -> None:
    """Seal with cpu and with multicore; every phase's results and files must agree."""
    used = assert_sealing_matches_reference(
        "multicore", _inputs(tmp_path / "inputs", proof, data), tmp_path / "work")
    assert {p for p, backends in used.items() if backends == {"multicore"}} == COMPILED


@pytest.mark.parametrize("data", ["deal", "cc"])
@pytest.mark.parametrize("proof", ["StackedDrg2KiBV1", "StackedDrg2KiBV1_1"])
def test_identical_to_cpu_2kib(tmp_path: Path, proof: str, data: str) -> None:
    _assert_identical(tmp_path, proof, data)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["deal", "cc"])
@pytest.mark.parametrize("proof", ["StackedDrg8MiBV1", "StackedDrg8MiBV1_1"])
def test_identical_to_cpu_8mib(tmp_path: Path, proof: str, data: str) -> None:
    _assert_identical(tmp_path, proof, data)


def test_backend_info_names_the_kernel_cache(_kernel_cache: Path) -> None:
    info = sealagent_multicore.sealagent_backend_info()
    assert info.available, info.reason
    assert info.kernel_cache == str(_kernel_cache)


def _has_ifma() -> bool:
    from sealagent_multicore import field_ifma

    return field_ifma.available()


POSEIDON_KERNELS = [
    pytest.param(False, id="scalar"),
    pytest.param(True, id="ifma", marks=pytest.mark.skipif(
        not _has_ifma(), reason="this CPU has no AVX-512 IFMA")),
]


@pytest.mark.parametrize("ifma", POSEIDON_KERNELS)
@pytest.mark.parametrize("arity", [2, 4, 8, 11])
@pytest.mark.parametrize("groups", [1, 7, 300])
def test_poseidon_rows_match_the_reference(arity: int, groups: int, ifma: bool) -> None:
    from sealagent_multicore.poseidon import PoseidonRows

    rng = np.random.default_rng(arity * 1000 + groups)
    row = rng.integers(0, 256, size=(groups * arity, 32), dtype=np.uint8)
    row[:, 31] &= 0x3F
    row[0] = 0
    row[-1] = np.frombuffer((R - 1).to_bytes(32, "little"), dtype=np.uint8)
    assert np.array_equal(PoseidonRows(2, ifma=ifma).hash_level(row, arity),
                          poseidon_hash_level(row, arity))


@pytest.mark.parametrize("ifma", POSEIDON_KERNELS)
def test_poseidon_rejects_a_non_canonical_element(ifma: bool) -> None:
    from sealagent_multicore.poseidon import PoseidonRows

    rows = PoseidonRows(2, ifma=ifma)
    row = np.zeros((8 * 200, 32), dtype=np.uint8)
    row[777] = 0xFF
    with pytest.raises(InvalidInputError, match="canonical"):
        rows.hash_level(row, 8)
    row[777] = np.frombuffer(R.to_bytes(32, "little"), dtype=np.uint8)  # r itself
    with pytest.raises(InvalidInputError, match="canonical"):
        rows.hash_level(row, 8)
    with pytest.raises(InvalidInputError):
        rows.hash_level(row[:7], 8)


def test_poseidon_defaults_to_ifma_where_the_cpu_has_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sealagent.errors import ConfigError
    from sealagent_multicore import field_ifma
    from sealagent_multicore.poseidon import PoseidonRows

    assert PoseidonRows(1).ifma == field_ifma.available()
    # A CPU without IFMA (not reachable on this machine otherwise).
    monkeypatch.setattr(field_ifma, "available", lambda: False)
    assert not PoseidonRows(1).ifma
    with pytest.raises(ConfigError, match="IFMA"):
        PoseidonRows(1, ifma=True)


@pytest.mark.parametrize("ifma", POSEIDON_KERNELS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_poseidon_uses_exactly_the_granted_threads(monkeypatch: pytest.MonkeyPatch,
                                                   threads: int, ifma: bool) -> None:
    from sealagent_multicore import poseidon

    seen: set[int] = set()
    lock = threading.Lock()
    original = poseidon._run

    def recording(*args: object) -> int:
        with lock:
            seen.add(threading.get_ident())
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(poseidon, "_run", recording)
    poseidon.PoseidonRows(threads, ifma=ifma).hash_level(
        np.zeros((8 * 4096, 32), dtype=np.uint8), 8)
    assert len(seen) == threads
    assert threading.get_ident() in seen


def test_labeler_matches_the_reference_and_rejects_what_it_rejects() -> None:
    from sealagent_multicore.labeler import label_layer as compiled

    parents = StackedGraph(256, bytes(range(32)), "1.1.0").all_parents()
    replica = bytes(range(1, 33))
    prev = None
    for layer in (1, 2, 3):
        want, got = bytearray(256 * 32), bytearray(256 * 32)
        label_layer(replica, layer, parents, memoryview(want), prev)
        compiled(replica, layer, parents, memoryview(got), prev)
        assert got == want
        prev = np.frombuffer(bytes(got), dtype=np.uint8).reshape(256, 32)
    bad = parents.copy()
    bad[10, 0] = 10  # a base parent that does not precede its node
    with pytest.raises(InvalidInputError, match="precede"):
        compiled(replica, 1, bad, memoryview(bytearray(256 * 32)), None)
    with pytest.raises(InvalidInputError):
        compiled(replica, 2, parents, memoryview(bytearray(256 * 32)), None)


def test_granted_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALAGENT_THREADS", "3")
    assert environment.granted_threads() == 3
    monkeypatch.setenv("SEALAGENT_THREADS", "zero")
    with pytest.raises(Exception, match="SEALAGENT_THREADS"):
        environment.granted_threads()
    monkeypatch.delenv("SEALAGENT_THREADS")
    assert environment.granted_threads() == len(os.sched_getaffinity(0))


def _plugins_json(env: dict[str, str], prelude: str = "") -> dict[str, object]:
    """``multicore``'s record and the PC1 backend, as a fresh process sees them."""
    code = (f"{prelude}import json; from sealagent.plugins import PluginSet; "
            "p = PluginSet.load(); r = {x.name: x.to_json() for x in p.records()}; "
            "print(json.dumps([r['multicore'], p.select(['multicore']).backend_for("
            "__import__('sealagent.phases').phases.Phase.PRECOMMIT1)]))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                         capture_output=True, text=True, check=True).stdout
    record, backend = json.loads(out)
    return {**record, "pc1_backend": backend}


def test_declines_without_libcrypto_and_cpu_runs() -> None:
    record = _plugins_json({"SEALAGENT_LIBCRYPTO": "/nonexistent/libcrypto.so"})
    assert record["available"] is False
    assert "libcrypto" in str(record["reason"])
    assert record["pc1_backend"] == "cpu"


def test_declines_without_numba_and_cpu_runs() -> None:
    record = _plugins_json({}, prelude="import sys; sys.modules['numba'] = None; ")
    assert record["available"] is False
    assert "numba is not installed" in str(record["reason"])
    assert record["pc1_backend"] == "cpu"


def test_warm_names_the_cache(_kernel_cache: Path) -> None:
    lines: list[str] = []
    assert PluginSet.load().warm("multicore", lines.append)
    assert str(_kernel_cache) in lines[0]
    assert any("Poseidon" in line for line in lines)


@pytest.mark.slow
def test_two_processes_warming_at_once_leave_a_sound_cache(tmp_path: Path) -> None:
    env = {**os.environ, "SEALAGENT_KERNEL_CACHE": str(tmp_path / "kernels")}
    warmers = [subprocess.Popen([sys.executable, "-m", "sealagent", "plugins", "--warm",
                                 "multicore"], env=env, stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate()[0] for w in warmers]
    assert [w.returncode for w in warmers] == [0, 0], outputs
    # A third process loads every kernel from the cache (no compilation) and computes right.
    code = """
import numpy as np
import sealagent_multicore
sealagent_multicore.labeling_kernels(1)
sealagent_multicore.tree_kernels(2)
from sealagent_multicore import labeler, parents, poseidon, sha256
from sealagent.proofs.poseidon import poseidon_hash_level
row = np.arange(8 * 64 * 32, dtype=np.uint32).astype(np.uint8).reshape(-1, 32)
row[:, 31] &= 0x3F
rows = poseidon.PoseidonRows(2)
assert np.array_equal(rows.hash_level(row, 8), poseidon_hash_level(row, 8))
kernel = poseidon._hash_blocks if rows.ifma else poseidon._hash_groups
fns = [labeler._label_range, parents._parents_range, sha256._hash_pairs, kernel]
print(sum(f.stats.cache_misses.total() for f in fns),
      sum(f.stats.cache_hits.total() > 0 for f in fns))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["0", "4"], out  # no compilation; each kernel loaded from the cache
