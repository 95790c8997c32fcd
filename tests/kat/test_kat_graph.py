"""Known answers for seeds, the SDR graph, the parent cache files and labeling."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from sealagent.proofs.graph import StackedGraph, derive_drg_seed, derive_feistel_keys
from sealagent.proofs.labels import generate_labels
from sealagent.proofs.parent_cache import (
    PARENT_CACHE_MANIFEST,
    load_parents,
    parent_cache_file,
    parent_cache_name,
    parent_cache_path,
)
from sealagent.vocab.registry import ApiVersion, RegisteredSealProof

Vectors = dict[str, dict[str, Any]]


def _api(text: str) -> ApiVersion:
    """The vector's API version text starts with the version number."""
    return ApiVersion(text.split()[0].split("/")[0])


@pytest.mark.parametrize(
    "name", ["labels_64nodes_11layers_v1_1", "labels_64nodes_11layers_legacy_v1_0"]
)
def test_labels_64_nodes_11_layers(vectors: Vectors, name: str) -> None:
    inputs, expected = vectors[name]["inputs"], vectors[name]["expected"]
    assert inputs["sector_bytes"] == inputs["nodes"] * 32
    labels = generate_labels(
        bytes.fromhex(inputs["replica_id_hex"]),
        bytes.fromhex(inputs["porep_id_hex"]),
        inputs["nodes"],
        inputs["layers"],
        _api(inputs["api_version"]),
    )
    assert len(labels) == inputs["layers"]
    last = labels[-1][-32:]
    assert last.hex() == expected["last_label_layer11_node_last_le_hex"]
    limbs = [int.from_bytes(last[i : i + 8], "little") for i in range(0, 32, 8)]
    assert limbs == [int(x, 16) for x in expected["as_u64_limbs_le"]]
    assert labels[0][0:32].hex() == expected["layer1_node0"]
    assert labels[0][32:64].hex() == expected["layer1_node1"]
    assert labels[0][64:96].hex() == expected["layer1_node2"]
    assert labels[1][32:64].hex() == expected["layer2_node1"]


def test_labels_api_1_2_equals_1_1(vectors: Vectors) -> None:
    inputs = vectors["labels_64nodes_11layers_v1_1"]["inputs"]
    args = (bytes.fromhex(inputs["replica_id_hex"]), bytes.fromhex(inputs["porep_id_hex"]), 64, 11)
    assert generate_labels(*args, ApiVersion.V1_2_0) == generate_labels(*args, ApiVersion.V1_1_0)


def test_porep_ids_seeds_and_cache_names(vectors: Vectors) -> None:
    table = vectors["porep_ids_graph_seeds_and_parent_cache_filenames"]["expected"]["table"]
    assert [row["id"] for row in table] == list(range(20))
    for row in table:
        proof = RegisteredSealProof(row["id"])
        assert proof.name == row["registered_proof"]
        assert proof.api_version.value == row["api_version"]
        assert proof.sector_size == row["sector_size"]
        assert proof.porep_id.hex() == row["porep_id_hex"]
        assert derive_drg_seed(proof.porep_id).hex() == row["drg_seed28_hex"]
        keys = derive_feistel_keys(proof.porep_id)
        assert list(keys) == [int(k) for k in row["feistel_keys_u64"]]
        assert [f"0x{k:016x}" for k in keys] == row["feistel_keys_hex"]
        graph = StackedGraph.for_proof(proof)
        assert (graph.drg_seed, graph.feistel_keys) == (derive_drg_seed(proof.porep_id), keys)
        assert parent_cache_name(graph) == row["parent_cache_file"]
        assert parent_cache_path(proof).name == row["parent_cache_file"]


def test_parent_cache_manifest(vectors: Vectors) -> None:
    entries = vectors["parent_cache_manifest"]["expected"]["entries"]
    assert set(PARENT_CACHE_MANIFEST) == set(entries)
    for stem, entry in entries.items():
        ours = PARENT_CACHE_MANIFEST[stem]
        assert (ours.digest, ours.sector_size, ours.porep_registered_id) == (
            entry["digest"], entry["sector_size"], entry["porep_registered_id"]
        )
        proof = RegisteredSealProof(entry["porep_registered_id"])
        assert proof.sector_size == entry["sector_size"]
        assert parent_cache_name(StackedGraph.for_proof(proof)) == stem + ".cache"


def _check_cache_file(vector: dict[str, Any], proof: RegisteredSealProof) -> np.ndarray:
    """Build (or find) the proof's cache file and check it against the vector."""
    inputs, expected = vector["inputs"], vector["expected"]
    assert proof.porep_id.hex() == inputs["porep_id_hex"]
    assert proof.nodes == inputs["nodes"]
    assert proof.api_version.is_legacy == _api(inputs["api_version"]).is_legacy
    path = parent_cache_file(proof)
    assert path.name == expected["file_name"]
    assert path.stat().st_size == expected["file_size"]
    with path.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == expected["sha256_of_file"]
    return load_parents(proof)


@pytest.mark.parametrize(
    ("name", "proof_id"), [("parent_cache_2KiB_porep_id_0", 0), ("parent_cache_2KiB_porep_id_5", 5)]
)
def test_parent_cache_2kib(vectors: Vectors, name: str, proof_id: int) -> None:
    proof = RegisteredSealProof(proof_id)
    parents = _check_cache_file(vectors[name], proof)
    table = vectors[name]["expected"]["parents_per_node"]
    assert parents.tolist() == table
    graph = StackedGraph.for_proof(proof)
    assert [graph.parents(v) for v in range(proof.nodes)] == table


@pytest.mark.parametrize(
    ("name", "proof_id"), [("parent_cache_8MiB_porep_id_1", 1), ("parent_cache_8MiB_porep_id_6", 6)]
)
def test_parent_cache_8mib(vectors: Vectors, name: str, proof_id: int) -> None:
    proof = RegisteredSealProof(proof_id)
    parents = _check_cache_file(vectors[name], proof)
    graph = StackedGraph.for_proof(proof)
    for node, expected in vectors[name]["expected"]["sample_parents"].items():
        assert parents[int(node)].tolist() == expected
        assert graph.parents(int(node)) == expected


@pytest.mark.slow
def test_parent_cache_512mib_porep_id_7(vectors: Vectors) -> None:
    vector = vectors["parent_cache_512MiB_porep_id_7_recomputed"]
    proof = RegisteredSealProof.StackedDrg512MiBV1_1
    parents = _check_cache_file(vector, proof)
    graph = StackedGraph.for_proof(proof)
    for node in (0, 1, 2, 12345, proof.nodes // 2, proof.nodes - 1):
        assert parents[node].tolist() == graph.parents(node)


@pytest.mark.slow
def test_parent_cache_512mib_legacy_porep_id_2() -> None:
    proof = RegisteredSealProof.StackedDrg512MiBV1
    path = parent_cache_file(proof)
    entry = PARENT_CACHE_MANIFEST[path.name.removesuffix(".cache")]
    assert entry.porep_registered_id == 2
    with path.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == entry.digest
