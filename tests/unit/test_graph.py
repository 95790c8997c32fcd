"""ChaCha, the DRG and the Feistel expander: per-node reference vs. bulk numpy paths."""

from __future__ import annotations

import numpy as np
import pytest

from sealagent.errors import InvalidInputError
from sealagent.proofs.chacha import (
    chacha20_ietf_keystream,
    chacha_batch_words,
    chacha_block_function,
    chacha_keystream,
)
from sealagent.proofs.graph import (
    BASE_DEGREE,
    DEGREE,
    FeistelParams,
    StackedGraph,
    derive_feistel_keys,
)
from sealagent.vocab.registry import ApiVersion, RegisteredSealProof

# ChaCha with an all-zero key and nonce (draft-strombergson-chacha-test-vectors, TC1).
CHACHA8_ZERO = bytes.fromhex(
    "3e00ef2f895f40d67f5bb8e81f09a5a12c840ec3ce9a7f3b181be188ef711a1e"
    "984ce172b9216f419f445367456d5619314a42a3da86b001387bfdb80e0cfe42"
)
CHACHA20_ZERO = bytes.fromhex(
    "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
    "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
)
# RFC 8439 §2.3.2: key 00..1f, nonce 000000090000004a00000000, block counter 1.
RFC8439_BLOCK = bytes.fromhex(
    "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
    "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
)
RFC8439_NONCE = bytes.fromhex("000000090000004a00000000")
KEY = bytes(range(32))


class TestChaCha:
    def test_chacha8_zero_key(self) -> None:
        assert chacha_keystream(bytes(32), 64, rounds=8) == CHACHA8_ZERO

    def test_chacha20_zero_key(self) -> None:
        assert chacha_keystream(bytes(32), 64, rounds=20) == CHACHA20_ZERO

    def test_rfc8439_block(self) -> None:
        out = chacha_keystream(KEY, 64, rounds=20, nonce=RFC8439_NONCE, counter=1)
        assert out == RFC8439_BLOCK

    @pytest.mark.parametrize("nonce", [b"", b"\x01" * 8, RFC8439_NONCE])
    def test_counter_continues_the_stream(self, nonce: bytes) -> None:
        whole = chacha_keystream(KEY, 64 * 5, rounds=12, nonce=nonce)
        assert chacha_keystream(KEY, 64 * 2, rounds=12, nonce=nonce, counter=3) == whole[192:]
        assert chacha_keystream(KEY, 70, rounds=12, nonce=nonce) == whole[:70]

    def test_empty_nonce_is_stream_zero(self) -> None:
        assert chacha_keystream(KEY, 128, rounds=8) == chacha_keystream(
            KEY, 128, rounds=8, nonce=bytes(8)
        )

    def test_64bit_counter_carries_into_word_13(self) -> None:
        # Blocks 2^32 − 1 and 2^32 differ only in words 12–13 of the 64-bit layout.
        two = chacha_keystream(KEY, 128, rounds=8, counter=(1 << 32) - 1)
        assert two[64:] == chacha_keystream(KEY, 64, rounds=8, counter=1 << 32)
        assert two[:64] != two[64:]

    def test_ietf_offset_window(self) -> None:
        whole = chacha_keystream(KEY, 300, rounds=20, nonce=RFC8439_NONCE)
        assert chacha20_ietf_keystream(KEY, RFC8439_NONCE, 70, 150) == whole[70:220]
        assert chacha20_ietf_keystream(KEY, RFC8439_NONCE, 0, 0) == b""

    def test_batch_matches_single_keys(self) -> None:
        keys = np.frombuffer(bytes(range(96)), dtype="<u4").reshape(3, 8).astype(np.uint32)
        words = chacha_batch_words(keys, 20, rounds=8)
        assert words.shape == (3, 20)
        for row, key in zip(words, keys, strict=True):
            expected = chacha_keystream(key.astype("<u4").tobytes(), 80, rounds=8)
            assert row.astype("<u4").tobytes() == expected

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"rounds": 7}, "even number of rounds"),
            ({"rounds": 0}, "even number of rounds"),
            ({"rounds": 20, "nonce": b"123"}, "nonce must be"),
            ({"rounds": 20, "nonce": RFC8439_NONCE, "counter": (1 << 32) - 1}, "exceeds 32"),
            ({"rounds": 8, "counter": -1}, "counter"),
        ],
    )
    def test_bad_parameters(self, kwargs: dict[str, object], match: str) -> None:
        with pytest.raises(InvalidInputError, match=match):
            chacha_keystream(KEY, 128, **kwargs)  # type: ignore[arg-type]

    def test_bad_key_and_state(self) -> None:
        with pytest.raises(InvalidInputError, match="32 bytes"):
            chacha_keystream(b"short", 64, rounds=8)
        with pytest.raises(InvalidInputError, match=r"\(16, n\)"):
            chacha_block_function(np.zeros((8, 2), dtype=np.uint32), 8)
        with pytest.raises(InvalidInputError, match=r"\(n, 8\)"):
            chacha_batch_words(np.zeros((2, 4), dtype=np.uint32), 4, rounds=8)


class TestFeistel:
    @pytest.mark.parametrize("num_elements", [8 * 3, 8 * 64, 8 * 100])
    def test_permute_is_a_bijection(self, num_elements: int) -> None:
        params = FeistelParams.for_elements(num_elements, derive_feistel_keys(bytes(32)))
        images = [params.permute(x) for x in range(num_elements)]
        assert sorted(images) == list(range(num_elements))
        assert images != list(range(num_elements))

    def test_array_path_matches_scalar(self) -> None:
        params = FeistelParams.for_elements(8 * 1000, derive_feistel_keys(b"\x05" + bytes(31)))
        index = np.arange(8 * 1000, dtype=np.uint64)
        assert params.permute_array(index).tolist() == [params.permute(x) for x in range(8000)]

    @pytest.mark.parametrize(
        ("num_elements", "half_bits"), [(2, 1), (4, 1), (5, 2), (8 * 64, 5), (8 << 18, 11)]
    )
    def test_half_bits(self, num_elements: int, half_bits: int) -> None:
        assert FeistelParams.for_elements(num_elements, (1, 2, 3, 4)).half_bits == half_bits

    def test_only_three_keys_are_used(self) -> None:
        params = FeistelParams.for_elements(64, (1, 2, 3, 4))
        assert params.keys == (1, 2, 3)


GRAPHS = [
    pytest.param(100, bytes([7]) * 32, ApiVersion.V1_1_0, id="100-nodes-v1_1"),
    pytest.param(100, bytes([7]) * 32, ApiVersion.V1_0_0, id="100-nodes-legacy"),
    pytest.param(4096, bytes([123]) * 32, ApiVersion.V1_2_0, id="4096-nodes-v1_2"),
]


class TestStackedGraph:
    @pytest.mark.parametrize(("nodes", "porep_id", "api"), GRAPHS)
    def test_bulk_equals_per_node(self, nodes: int, porep_id: bytes, api: ApiVersion) -> None:
        graph = StackedGraph(nodes, porep_id, api)
        bulk = graph.all_parents()
        assert bulk.shape == (nodes, DEGREE) and bulk.dtype == np.uint32
        sample = range(nodes) if nodes <= 100 else [*range(40), *range(nodes - 40, nodes)]
        for v in sample:
            assert bulk[v].tolist() == graph.parents(v), f"node {v}"

    @pytest.mark.parametrize(("nodes", "porep_id", "api"), GRAPHS)
    def test_chunks_equal_whole(self, nodes: int, porep_id: bytes, api: ApiVersion) -> None:
        graph = StackedGraph(nodes, porep_id, api)
        whole = graph.all_parents()
        pieces = [graph.all_parents(lo, min(lo + 7, nodes)) for lo in range(0, nodes, 7)]
        assert np.array_equal(np.concatenate(pieces), whole)
        assert np.array_equal(graph.all_parents(3, 50), whole[3:50])
        assert graph.all_parents(5, 5).shape == (0, DEGREE)

    @pytest.mark.parametrize(("nodes", "porep_id", "api"), GRAPHS)
    def test_structure(self, nodes: int, porep_id: bytes, api: ApiVersion) -> None:
        parents = StackedGraph(nodes, porep_id, api).all_parents().astype(np.int64)
        v = np.arange(nodes)
        assert not parents[:2, :BASE_DEGREE].any()
        assert (parents[2:, :BASE_DEGREE] < v[2:, None]).all()
        predecessor = BASE_DEGREE - 1 if api.is_legacy else 0
        assert (parents[1:, predecessor] == v[1:] - 1).all()
        assert (parents[:, BASE_DEGREE:] < nodes).all()

    def test_api_versions_1_1_and_1_2_agree(self) -> None:
        a = StackedGraph(200, bytes(32), ApiVersion.V1_1_0).all_parents()
        b = StackedGraph(200, bytes(32), ApiVersion.V1_2_0).all_parents()
        legacy = StackedGraph(200, bytes(32), ApiVersion.V1_0_0).all_parents()
        assert np.array_equal(a, b)
        assert not np.array_equal(a, legacy)

    def test_porep_id_changes_the_graph(self) -> None:
        a = StackedGraph(64, RegisteredSealProof(5).porep_id, ApiVersion.V1_1_0)
        b = StackedGraph(64, RegisteredSealProof(10).porep_id, ApiVersion.V1_1_0)
        assert not np.array_equal(a.all_parents(), b.all_parents())

    def test_for_proof(self) -> None:
        graph = StackedGraph.for_proof("StackedDrg2KiBV1")
        assert graph.nodes == 64 and graph.api_version is ApiVersion.V1_0_0
        assert graph.porep_id == bytes(32)
        assert "size: 64; degree: 6; hasher: poseidon_hasher" in graph.identifier

    @pytest.mark.parametrize(
        ("args", "match"),
        [
            ((1, bytes(32), ApiVersion.V1_1_0), "between 2 and 2\\^32"),
            ((64, bytes(31), ApiVersion.V1_1_0), "porep_id must be 32 bytes"),
            ((64, bytes(32), "7.0.0"), "unknown proofs API version"),
        ],
    )
    def test_bad_graphs(self, args: tuple[object, ...], match: str) -> None:
        with pytest.raises(InvalidInputError, match=match):
            StackedGraph(*args)  # type: ignore[arg-type]

    def test_bad_nodes_and_ranges(self) -> None:
        graph = StackedGraph(64, bytes(32), ApiVersion.V1_1_0)
        with pytest.raises(InvalidInputError, match="outside the graph"):
            graph.parents(64)
        with pytest.raises(InvalidInputError, match="outside the graph"):
            graph.all_parents(10, 65)
