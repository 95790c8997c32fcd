"""The SDR graph: DRG (BucketGraph) and Feistel expander parents (docs/porep.md §5).

Every node ``v`` has 14 parents, ``[drg_0 … drg_5, exp_0 … exp_7]``: six base parents in
the same layer (a ChaCha8-seeded bucket sampling) and eight expander parents in the
previous layer (a keyed Feistel permutation of ``[0, 8·nodes)``).

Two paths compute them:

* :meth:`StackedGraph.parents` is the per-node reference, written like the spec with
  Python integers and one BLAKE2b call per Feistel round; verifiers use it for the few
  nodes they check.
* :meth:`StackedGraph.all_parents` computes ranges of nodes with numpy: the ChaCha8
  blocks of all nodes at once, the bucket arithmetic on uint64 arrays, and the Feistel
  rounds as lookups in a table of the round function (it depends only on the right half
  and the key, so ``3 · 2^half_bits`` BLAKE2b calls cover the whole graph).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from sealagent.errors import InvalidInputError
from sealagent.proofs.chacha import chacha_batch_words, chacha_keystream
from sealagent.vocab.registry import (
    ApiVersion,
    RegisteredSealProof,
    resolve_api_version,
    resolve_proof,
)

BASE_DEGREE: Final = 6
"""DRG parents per node."""
EXP_DEGREE: Final = 8
"""Expander parents per node."""
DEGREE: Final = BASE_DEGREE + EXP_DEGREE
"""All parents per node, in the order ``[drg…, exp…]``."""

DRG_SEED_DST: Final = b"Filecoin_DRSample"
FEISTEL_DST: Final = b"Filecoin_Feistel"
DRG_SEED_BYTES: Final = 28
FEISTEL_ROUNDS: Final = 3
"""Rounds of the expander permutation (``key[3]`` is derived but never used)."""
CHACHA_DRG_ROUNDS: Final = 8
HASHER_NAME: Final = "poseidon_hasher"
"""The tree hasher name that graph identifiers and parent cache names embed."""

_DRG_RNG_WORDS: Final = 2 * 2 * (BASE_DEGREE - 1)
"""ChaCha8 words a node consumes: two ``u64`` per DRG parent after the predecessor."""
_MIN_NODES: Final = 2
_MAX_NODES: Final = (1 << 32) - 1
"""Parents, the DRG seed's node index and the cache name's node count are ``u32``."""
_DEFAULT_CHUNK: Final = 1 << 14

ParentsArray = npt.NDArray[np.uint32]
"""Parents of consecutive nodes: shape ``(n, 14)``, uint32."""


def derive_porep_domain_seed(dst: bytes, porep_id: bytes) -> bytes:
    """``SHA256(dst || porep_id)``: a 32-byte seed bound to one registered proof."""
    return hashlib.sha256(dst + _check_porep_id(porep_id)).digest()


def derive_drg_seed(porep_id: bytes) -> bytes:
    """The 28-byte DRG seed ``SHA256("Filecoin_DRSample" || porep_id)[0:28]``."""
    return derive_porep_domain_seed(DRG_SEED_DST, porep_id)[:DRG_SEED_BYTES]


def derive_feistel_keys(porep_id: bytes) -> tuple[int, int, int, int]:
    """The four Feistel keys: ``u64_le`` words of ``SHA256("Filecoin_Feistel" || porep_id)``."""
    raw = derive_porep_domain_seed(FEISTEL_DST, porep_id)
    k0, k1, k2, k3 = struct.unpack("<4Q", raw)
    return k0, k1, k2, k3


def _check_porep_id(porep_id: bytes) -> bytes:
    """Reject anything but a 32-byte porep id."""
    if not isinstance(porep_id, bytes | bytearray) or len(porep_id) != 32:
        raise InvalidInputError("porep_id must be 32 bytes")
    return bytes(porep_id)


@dataclass(frozen=True)
class FeistelParams:
    """The Feistel permutation of ``[0, num_elements)`` that maps expander edges."""

    num_elements: int
    half_bits: int
    keys: tuple[int, ...]

    @classmethod
    def for_elements(cls, num_elements: int, keys: tuple[int, ...]) -> FeistelParams:
        """Smallest ``log4 ≥ 1`` with ``4^log4 ≥ num_elements`` sets the half width."""
        half_bits, size = 1, 4
        while size < num_elements:
            size *= 4
            half_bits += 1
        return cls(num_elements, half_bits, keys[:FEISTEL_ROUNDS])

    @property
    def right_mask(self) -> int:
        """Mask of the right half."""
        return (1 << self.half_bits) - 1

    def round_function(self, right: int, key: int) -> int:
        """``u64_be(BLAKE2b-512(u64_be(right) || u64_be(key))[0:8]) & right_mask``."""
        digest = hashlib.blake2b(struct.pack(">QQ", right, key)).digest()
        return int.from_bytes(digest[:8], "big") & self.right_mask

    def encode(self, index: int) -> int:
        """One pass of the three Feistel rounds over ``index``."""
        left, right = index >> self.half_bits & self.right_mask, index & self.right_mask
        for key in self.keys:
            left, right = right, left ^ self.round_function(right, key)
        return left << self.half_bits | right

    def permute(self, index: int) -> int:
        """``encode`` repeated until the value falls inside the domain (cycle walking)."""
        value = self.encode(index)
        while value >= self.num_elements:
            value = self.encode(value)
        return value

    @cached_property
    def round_tables(self) -> npt.NDArray[np.uint64]:
        """The round function for every right half and key: shape ``(rounds, 2^half_bits)``."""
        table = np.empty((len(self.keys), 1 << self.half_bits), dtype=np.uint64)
        for row, key in enumerate(self.keys):
            table[row] = [self.round_function(r, key) for r in range(1 << self.half_bits)]
        return table

    def encode_array(self, index: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """:meth:`encode` of every element, through :attr:`round_tables`."""
        shift = np.uint64(self.half_bits)
        mask = np.uint64(self.right_mask)
        left = (index >> shift) & mask
        right = index & mask
        for table in self.round_tables:
            left, right = right, left ^ table[right]
        result: npt.NDArray[np.uint64] = (left << shift) | right
        return result

    def permute_array(self, index: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """:meth:`permute` of every element; only the values still outside keep walking."""
        value = self.encode_array(index)
        limit = np.uint64(self.num_elements)
        walking = np.flatnonzero(value >= limit)
        while walking.size:
            step = self.encode_array(value[walking])
            value[walking] = step
            walking = walking[step >= limit]
        return value


class StackedGraph:
    """The SDR graph of one porep id and size: 6 DRG + 8 expander parents per node."""

    def __init__(self, nodes: int, porep_id: bytes, api_version: ApiVersion | str) -> None:
        if not isinstance(nodes, int) or not _MIN_NODES <= nodes <= _MAX_NODES:
            raise InvalidInputError(
                f"a graph needs between {_MIN_NODES} and 2^32 − 1 nodes, got {nodes}"
            )
        api_version = resolve_api_version(api_version)
        self.nodes: Final = nodes
        self.porep_id: Final = _check_porep_id(porep_id)
        self.api_version: Final = api_version
        self.drg_seed: Final = derive_drg_seed(self.porep_id)
        self.feistel_keys: Final = derive_feistel_keys(self.porep_id)
        self.feistel: Final = FeistelParams.for_elements(EXP_DEGREE * nodes, self.feistel_keys)

    @classmethod
    def for_proof(cls, registered_proof: RegisteredSealProof | str | int) -> StackedGraph:
        """The graph a registered seal proof seals with."""
        proof = resolve_proof(registered_proof)
        return cls(proof.nodes, proof.porep_id, proof.api_version)

    def __repr__(self) -> str:
        return (
            f"StackedGraph(nodes={self.nodes}, porep_id={self.porep_id.hex()}, "
            f"api_version={self.api_version.value})"
        )

    @property
    def identifier(self) -> str:
        """rust-fil-proofs' ``StackedGraph::identifier()`` (used in parent cache names)."""
        return (
            f"stacked_graph::StackedGraph{{expansion_degree: {EXP_DEGREE} "
            f"base_graph: drgraph::BucketGraph{{size: {self.nodes}; degree: {BASE_DEGREE}; "
            f"hasher: {HASHER_NAME}}} }}"
        )

    def _check_node(self, v: int) -> None:
        """Reject node indexes outside the graph."""
        if not 0 <= v < self.nodes:
            raise InvalidInputError(f"node {v} is outside the graph of {self.nodes} nodes")

    def drg_parents(self, v: int) -> list[int]:
        """The six base parents of node ``v`` (docs/porep.md §5.2), in cache order."""
        self._check_node(v)
        if v < 2:
            return [0] * BASE_DEGREE
        seed = self.drg_seed + struct.pack("<I", v)
        stream = chacha_keystream(seed, 4 * _DRG_RNG_WORDS, rounds=CHACHA_DRG_ROUNDS)
        rng = iter(struct.unpack(f"<{_DRG_RNG_WORDS // 2}Q", stream))  # rng.gen::<u64>()
        m_prime = BASE_DEGREE - 1
        meta = v * m_prime
        n_buckets = (meta - 1).bit_length()
        sampled = []
        for _ in range(m_prime):
            bucket = next(rng) % n_buckets + 1
            largest = min(meta, 1 << bucket)
            smallest = max(2, largest >> 1)
            distance = smallest + next(rng) % (largest - smallest + 1)
            parent = (meta - distance) // m_prime
            sampled.append(v - 1 if parent == v else parent)
        if self.api_version.is_legacy:
            return [*sampled, v - 1]
        return [v - 1, *sampled]

    def expander_parents(self, v: int) -> list[int]:
        """The eight expander parents of node ``v`` (docs/porep.md §5.3)."""
        self._check_node(v)
        out = []
        for i in range(EXP_DEGREE):
            t = self.feistel.permute(EXP_DEGREE * v + i)
            out.append((t & 0xFFFFFFFF if self.api_version.is_legacy else t) // EXP_DEGREE)
        return out

    def parents(self, v: int) -> list[int]:
        """All 14 parents of node ``v``: DRG parents, then expander parents."""
        return self.drg_parents(v) + self.expander_parents(v)

    def _drg_array(self, start: int, stop: int) -> npt.NDArray[np.uint64]:
        """Base parents of nodes ``[start, stop)`` as ``(n, 6)`` uint64."""
        out = np.zeros((stop - start, BASE_DEGREE), dtype=np.uint64)
        first = max(start, 2)
        if first >= stop:
            return out
        v = np.arange(first, stop, dtype=np.uint64)
        keys = np.empty((v.size, 8), dtype=np.uint32)
        keys[:, :7] = np.frombuffer(self.drg_seed, dtype="<u4")
        keys[:, 7] = v.astype(np.uint32)
        words = chacha_batch_words(keys, _DRG_RNG_WORDS, rounds=CHACHA_DRG_ROUNDS)
        w64 = words.astype(np.uint64)
        rng = w64[:, 0::2] | (w64[:, 1::2] << np.uint64(32))
        m_prime = np.uint64(BASE_DEGREE - 1)
        meta = v * m_prime
        # ceil(log2(meta)) == bit_length(meta − 1); exact in float64 below 2^53.
        n_buckets = np.frexp((meta - np.uint64(1)).astype(np.float64))[1].astype(np.uint64)
        sampled = np.empty((v.size, BASE_DEGREE - 1), dtype=np.uint64)
        one, two = np.uint64(1), np.uint64(2)
        for k in range(BASE_DEGREE - 1):
            bucket = rng[:, 2 * k] % n_buckets + one
            largest = np.minimum(meta, one << bucket)
            smallest = np.maximum(two, largest >> one)
            distance = smallest + rng[:, 2 * k + 1] % (largest - smallest + one)
            parent = (meta - distance) // m_prime
            sampled[:, k] = np.where(parent == v, v - one, parent)
        rows = out[first - start :]
        if self.api_version.is_legacy:
            rows[:, : BASE_DEGREE - 1] = sampled
            rows[:, BASE_DEGREE - 1] = v - one
        else:
            rows[:, 0] = v - one
            rows[:, 1:] = sampled
        return out

    def _expander_array(self, start: int, stop: int) -> npt.NDArray[np.uint64]:
        """Expander parents of nodes ``[start, stop)`` as ``(n, 8)`` uint64."""
        # Edge i of node v is element 8·v + i: the edges of [start, stop) are contiguous.
        index = np.arange(EXP_DEGREE * start, EXP_DEGREE * stop, dtype=np.uint64)
        t = self.feistel.permute_array(index).reshape(stop - start, EXP_DEGREE)
        if self.api_version.is_legacy:
            t &= np.uint64(0xFFFFFFFF)
        result: npt.NDArray[np.uint64] = t // np.uint64(EXP_DEGREE)
        return result

    def check_node_range(self, start: int, stop: int) -> None:
        """Reject a node range ``[start, stop)`` that is not inside the graph."""
        if not 0 <= start <= stop <= self.nodes:
            raise InvalidInputError(
                f"node range [{start}, {stop}) is outside the graph of {self.nodes} nodes"
            )

    def all_parents(self, start: int = 0, stop: int | None = None) -> ParentsArray:
        """Parents of nodes ``[start, stop)`` (default: the whole graph), shape ``(n, 14)``."""
        stop = self.nodes if stop is None else stop
        self.check_node_range(start, stop)
        out = np.empty((stop - start, DEGREE), dtype=np.uint32)
        # Sub-ranges bound the temporaries (ChaCha states, Feistel walks) whatever the range.
        for lo in range(start, stop, _DEFAULT_CHUNK):
            hi = min(lo + _DEFAULT_CHUNK, stop)
            out[lo - start : hi - start, :BASE_DEGREE] = self._drg_array(lo, hi)
            out[lo - start : hi - start, BASE_DEGREE:] = self._expander_array(lo, hi)
        return out
