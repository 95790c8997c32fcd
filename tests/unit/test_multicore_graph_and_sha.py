"""The compiled parent cache builder and SHA-256 pairs: byte-identical to the reference."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from sealagent.errors import InvalidInputError
from sealagent.phases import AddPieceRequest, SectorPaths, SectorRef
from sealagent.plugins import PluginSet
from sealagent.proofs.graph import StackedGraph
from sealagent.proofs.merkle import SHA256_HASHER
from sealagent.proofs.parent_cache import (
    PARENT_CACHE_MANIFEST,
    ParentsBuilder,
    parent_cache_file,
    parent_cache_path,
)
from sealagent.proofs.pieces import add_piece
from sealagent.proofs.sha_tree import hash_pairs, sha256_hash_level
from sealagent.vocab.registry import RegisteredSealProof

pytest.importorskip("numba", reason="the multicore backend needs numba (sealagent[multicore])")

import sealagent_multicore
from sealagent_multicore.parents import CompiledParents


@pytest.fixture(scope="module")
def compiled() -> ParentsBuilder:
    return sealagent_multicore.parents_builder(2)


@pytest.mark.parametrize("api", ["1.0.0", "1.1.0"])
@pytest.mark.parametrize("nodes", [2, 3, 64, 1000, 4097])
def test_whole_graphs_match_the_reference(compiled: ParentsBuilder, nodes: int,
                                          api: str) -> None:
    porep_id = hashlib.sha256(f"{nodes}-{api}".encode()).digest()
    graph = StackedGraph(nodes, porep_id, api)
    assert np.array_equal(compiled(graph, 0, nodes), graph.all_parents())


@pytest.mark.parametrize("proof", [RegisteredSealProof.StackedDrg8MiBV1,
                                   RegisteredSealProof.StackedDrg8MiBV1_1])
def test_8mib_graphs_match_the_reference(compiled: ParentsBuilder,
                                         proof: RegisteredSealProof) -> None:
    graph = StackedGraph.for_proof(proof)
    assert np.array_equal(compiled(graph, 0, graph.nodes), graph.all_parents())


@pytest.mark.parametrize("proof", [RegisteredSealProof.StackedDrg512MiBV1,
                                   RegisteredSealProof.StackedDrg32GiBV1_1])
def test_ranges_of_large_graphs_match_the_reference(compiled: ParentsBuilder,
                                                    proof: RegisteredSealProof) -> None:
    graph = StackedGraph.for_proof(proof)
    for start, stop in [(0, 3000), (graph.nodes // 3 + 1, graph.nodes // 3 + 5001),
                        (graph.nodes - 2500, graph.nodes)]:
        assert np.array_equal(compiled(graph, start, stop), graph.all_parents(start, stop))


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_counts_agree(threads: int) -> None:
    graph = StackedGraph(20_000, bytes(range(32)), "1.1.0")
    assert np.array_equal(CompiledParents(threads)(graph, 7, 19_999),
                          graph.all_parents(7, 19_999))


def test_bad_ranges_are_rejected(compiled: ParentsBuilder) -> None:
    graph = StackedGraph(64, bytes(32), "1.1.0")
    for start, stop in [(-1, 5), (10, 65), (9, 8)]:
        with pytest.raises(InvalidInputError, match="outside the graph"):
            compiled(graph, start, stop)
    assert compiled(graph, 5, 5).shape == (0, 14)


def test_built_8mib_cache_file_has_the_manifest_digest(compiled: ParentsBuilder) -> None:
    proof = RegisteredSealProof.StackedDrg8MiBV1_1
    path = parent_cache_path(proof)
    path.unlink(missing_ok=True)
    seen: list[tuple[str, int, int]] = []
    built = parent_cache_file(proof, builder=compiled,
                              progress=lambda *report: seen.append(report))
    assert built == path
    entry = PARENT_CACHE_MANIFEST[path.name.removesuffix(".cache")]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.digest
    assert seen[-1] == ("parents", proof.nodes, proof.nodes)
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)


def test_a_builder_with_a_wrong_answer_fails_clearly(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIL_PROOFS_PARENT_CACHE", str(tmp_path))
    proof = RegisteredSealProof.StackedDrg2KiBV1_1

    def wrong(graph: StackedGraph, start: int, stop: int) -> np.ndarray:
        return np.zeros((stop - start, 13), dtype=np.uint32)

    with pytest.raises(InvalidInputError, match="parents builder returned"):
        parent_cache_file(proof, builder=wrong)
    assert os.listdir(tmp_path) == [parent_cache_path(proof).name + ".lock"]

    def corrupt(graph: StackedGraph, start: int, stop: int) -> np.ndarray:
        return graph.all_parents(start, stop) ^ np.uint32(1)

    with pytest.raises(Exception, match="manifest"):
        parent_cache_file(proof, builder=corrupt)
    assert not parent_cache_path(proof).exists()


def test_the_plugin_set_offers_the_compiled_builder() -> None:
    plugins = PluginSet.load()
    found = plugins.parents_builder(["multicore"])
    assert found is not None and found[0] == "multicore"
    assert isinstance(found[1], CompiledParents)
    assert plugins.parents_builder(["cpu"]) is None


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("pairs", [1, 7, (1 << 14) + 3, 3 << 15])
def test_compiled_sha256_pairs_match_hashlib(threads: int, pairs: int) -> None:
    from sealagent_multicore.sha256 import CompiledSha256

    rng = np.random.default_rng(pairs * 10 + threads)
    data = rng.integers(0, 256, size=(2 * pairs, 32), dtype=np.uint8)
    got = CompiledSha256(threads).hash_pairs(data)
    assert np.array_equal(got, sha256_hash_level(data))
    assert np.array_equal(CompiledSha256(threads).hash_pairs(data.tobytes()), got)


def test_compiled_sha256_trees_and_addpiece_match_the_reference(tmp_path: Path) -> None:
    from sealagent_multicore.sha256 import CompiledSha256

    hasher = CompiledSha256(2)
    leaves = np.random.default_rng(1).integers(0, 256, size=(1 << 12, 32), dtype=np.uint8)
    fast = hasher.tree_hasher()
    assert fast.hash_row(leaves, 2).tobytes() == SHA256_HASHER.hash_row(leaves, 2).tobytes()
    with pytest.raises(InvalidInputError, match="not 8"):
        fast.hash_row(leaves, 8)
    with pytest.raises(InvalidInputError, match="whole 64-byte pairs"):
        hasher.hash_pairs(bytes(96))
    piece = tmp_path / "piece"
    piece.write_bytes(np.random.default_rng(2).bytes(127 * 1024))
    outputs = []
    for name, pair_hasher in (("ref", hash_pairs), ("fast", hasher.hash_pairs)):
        with piece.open("rb") as source:
            out = add_piece("StackedDrg8MiBV1_1", source, tmp_path / name, 127 * 1024,
                            pair_hasher=pair_hasher)
        outputs.append((out, (tmp_path / name).read_bytes()))
    assert outputs[0] == outputs[1]


def test_addpiece_hook_declines_small_pieces_and_matches_cpu_on_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sealagent_cpu

    sector = SectorRef(miner=1000, number=3, proof="StackedDrg2KiBV1_1")
    piece = tmp_path / "piece"
    piece.write_bytes(np.random.default_rng(3).bytes(1016))

    def request(name: str) -> AddPieceRequest:
        return AddPieceRequest(sector, SectorPaths.under(tmp_path / name, sector), 1016,
                               str(piece), (1016,))

    assert sealagent_multicore.sealagent_addpiece(request("small")) is None
    monkeypatch.setattr(sealagent_multicore, "MIN_COMPILED_PIECE", 0)
    fast = sealagent_multicore.sealagent_addpiece(request("fast"))
    assert fast == sealagent_cpu.sealagent_addpiece(request("ref"))
    assert Path(request("fast").paths.unsealed).read_bytes() == Path(
        request("ref").paths.unsealed).read_bytes()
