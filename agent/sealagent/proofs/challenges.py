"""PoRep challenge derivation: interactive, synthetic and non-interactive (docs/porep.md §9.1–§9.3).

Every function takes its inputs explicitly (node count, replica id, randomness, partition)
so that prover and verifier derive the same list from the same public values;
:func:`partition_challenges` picks the rule a registered proof uses.

A challenge is a node index in ``[1, nodes − 1]``: node 0 is never challenged.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Final

from sealagent.errors import InvalidInputError
from sealagent.proofs.chacha import chacha20_ietf_keystream
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof

NI_TAG: Final = b"filecoin.io|PoRep|1|NonInteractive|1"
SYNTH_GENERATION_KEY: Final = b"filecoin.io|PoRep|1|Synthetic|1|Generation"
SYNTH_SELECTION_KEY: Final = b"filecoin.io|PoRep|1|Synthetic|1|Selection"
SYNTH_NONCE: Final = b"synth-porep\x00"
DEFAULT_SYNTH_CHALLENGE_COUNT: Final = 1 << 18
"""Synthetic challenges generated for a sector (fewer only when the sector has fewer nodes)."""

_SYNTH_CHALLENGE_BYTES: Final = 32
_SYNTH_INDEX_BYTES: Final = 4
_MAX_PARTITION: Final = 255
"""Partitions are numbered with a ``u8`` upstream."""


def bytes32(name: str, value: bytes) -> bytes:
    """``value`` as bytes if it is exactly 32 bytes; InvalidInputError naming it otherwise."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidInputError(f"{name} must be 32 bytes")
    return bytes(value)


def _check_nodes(sector_nodes: int) -> None:
    """Reject node counts that leave nothing to challenge or overflow a ``u32`` index."""
    if not 2 <= sector_nodes <= 1 << 32:
        raise InvalidInputError(f"sector_nodes must be in [2, 2^32], got {sector_nodes}")


def _counters(challenges_per_partition: int, k: int) -> range:
    """The global challenge counters ``j = C·k + i`` of partition ``k``."""
    if challenges_per_partition < 1:
        raise InvalidInputError(
            f"challenges_per_partition must be positive, got {challenges_per_partition}"
        )
    if not 0 <= k <= _MAX_PARTITION:
        raise InvalidInputError(f"partition index must be in [0, {_MAX_PARTITION}], got {k}")
    first = challenges_per_partition * k
    if first + challenges_per_partition > 1 << 32:
        raise InvalidInputError("challenge counter does not fit in 32 bits")
    return range(first, first + challenges_per_partition)


def challenge_from_digest(digest: bytes, sector_nodes: int) -> int:
    """Reduce a little-endian integer to a node in ``[1, nodes − 1]``."""
    return int.from_bytes(digest, "little") % (sector_nodes - 1) + 1


def interactive_challenges(
    sector_nodes: int, replica_id: bytes, seed: bytes, k: int, challenges_per_partition: int
) -> list[int]:
    """Challenges of partition ``k``: ``SHA256(replica_id || seed || u32_le(j))`` reduced."""
    _check_nodes(sector_nodes)
    bytes32("replica_id", replica_id)
    bytes32("seed", seed)
    prefix = hashlib.sha256(bytes(replica_id) + bytes(seed))
    return _counter_challenges(prefix, sector_nodes, k, challenges_per_partition)


def non_interactive_challenges(
    sector_nodes: int, replica_id: bytes, comm_r: bytes, k: int, challenges_per_partition: int
) -> list[int]:
    """NI-PoRep challenges of partition ``k``.

    ``SHA256(tag || replica_id || comm_r || u32_le(j))``, reduced as in
    :func:`interactive_challenges`.
    """
    _check_nodes(sector_nodes)
    bytes32("replica_id", replica_id)
    bytes32("comm_r", comm_r)
    prefix = hashlib.sha256(NI_TAG + bytes(replica_id) + bytes(comm_r))
    return _counter_challenges(prefix, sector_nodes, k, challenges_per_partition)


def _counter_challenges(prefix: hashlib._Hash, sector_nodes: int, k: int,
                        challenges_per_partition: int) -> list[int]:
    """Partition ``k``'s challenges: ``prefix`` hashed on with each ``u32_le(j)``, reduced."""
    out = []
    for j in _counters(challenges_per_partition, k):
        h = prefix.copy()
        h.update(struct.pack("<I", j))
        out.append(challenge_from_digest(h.digest(), sector_nodes))
    return out


def synthetic_challenge_count(sector_nodes: int) -> int:
    """Size of the synthetic challenge set: ``min(nodes, 2^18)``."""
    _check_nodes(sector_nodes)
    return min(sector_nodes, DEFAULT_SYNTH_CHALLENGE_COUNT)


def _prf_key(key: bytes, first: bytes, second: bytes) -> bytes:
    """``BLAKE2b(digest_size=32, key=key)(first || second)``."""
    return hashlib.blake2b(bytes(first) + bytes(second), digest_size=32, key=key).digest()


def synthetic_challenges(
    sector_nodes: int, replica_id: bytes, comm_r: bytes, start: int = 0, count: int | None = None
) -> list[int]:
    """Synthetic challenges ``start … start+count−1`` (default: the whole set from 0).

    Challenge ``i`` is keystream bytes ``[32i, 32i+32)`` of ChaCha20 (IETF) keyed with
    ``BLAKE2b_32(key="…Generation", replica_id || comm_r)``, reduced like docs/porep.md §9.1.
    """
    _check_nodes(sector_nodes)
    bytes32("replica_id", replica_id)
    bytes32("comm_r", comm_r)
    if count is None:
        count = synthetic_challenge_count(sector_nodes) - start
    if start < 0 or count < 0:
        raise InvalidInputError("synthetic challenge range must be non-negative")
    key = _prf_key(SYNTH_GENERATION_KEY, replica_id, comm_r)
    stream = chacha20_ietf_keystream(
        key, SYNTH_NONCE, start * _SYNTH_CHALLENGE_BYTES, count * _SYNTH_CHALLENGE_BYTES
    )
    return [
        challenge_from_digest(stream[i : i + _SYNTH_CHALLENGE_BYTES], sector_nodes)
        for i in range(0, len(stream), _SYNTH_CHALLENGE_BYTES)
    ]


def synthetic_selection_indexes(
    num_synth_challenges: int, replica_id: bytes, seed: bytes, k: int, challenges_per_partition: int
) -> list[int]:
    """Which synthetic challenges partition ``k`` proves: ``u32_le`` words of the selection PRF.

    The PRF is ChaCha20 (IETF) keyed with ``BLAKE2b_32(key="…Selection", replica_id || seed)``;
    partition ``k`` reads ``4·C`` bytes from offset ``4·C·k``; each word is taken modulo
    the synthetic set size.
    """
    bytes32("replica_id", replica_id)
    bytes32("seed", seed)
    if num_synth_challenges < 1:
        raise InvalidInputError("the synthetic challenge set must not be empty")
    counters = _counters(challenges_per_partition, k)
    key = _prf_key(SYNTH_SELECTION_KEY, replica_id, seed)
    stream = chacha20_ietf_keystream(
        key, SYNTH_NONCE, counters.start * _SYNTH_INDEX_BYTES, len(counters) * _SYNTH_INDEX_BYTES
    )
    words = struct.unpack(f"<{len(counters)}I", stream)
    return [w % num_synth_challenges for w in words]


def synthetic_porep_challenges(
    sector_nodes: int,
    replica_id: bytes,
    comm_r: bytes,
    seed: bytes,
    *,
    k: int,
    challenges_per_partition: int,
    num_synth_challenges: int | None = None,
) -> list[int]:
    """The synthetic challenges that partition ``k`` proves, selected by ``seed``."""
    if num_synth_challenges is None:
        num_synth_challenges = synthetic_challenge_count(sector_nodes)
    indexes = synthetic_selection_indexes(
        num_synth_challenges, replica_id, seed, k, challenges_per_partition
    )
    return [synthetic_challenges(sector_nodes, replica_id, comm_r, i, 1)[0] for i in indexes]


def partition_challenges(
    registered_proof: RegisteredSealProof | str | int,
    replica_id: bytes,
    k: int,
    *,
    seed: bytes,
    comm_r: bytes,
) -> list[int]:
    """The challenges partition ``k`` of ``registered_proof`` proves, by its challenge rule.

    Interactive proofs (V1, V1_1) use ``seed``; synthetic proofs use ``seed`` and
    ``comm_r``; non-interactive proofs use ``comm_r`` only (``seed`` is ignored).
    """
    proof = resolve_proof(registered_proof)
    if not 0 <= k < proof.partitions:
        raise InvalidInputError(f"{proof.name} has {proof.partitions} partitions, not k={k}")
    nodes, count = proof.nodes, proof.challenges_per_partition
    if proof.is_non_interactive:
        return non_interactive_challenges(nodes, replica_id, comm_r, k, count)
    if proof.is_synthetic:
        return synthetic_porep_challenges(nodes, replica_id, comm_r, seed, k=k,
                                          challenges_per_partition=count)
    return interactive_challenges(nodes, replica_id, seed, k, count)
