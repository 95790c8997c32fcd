"""The ChaCha block function, vectorized with numpy over many blocks at once.

One implementation serves both layouts the proofs use:

* rand_chacha's ``ChaCha8Rng`` (the DRG, docs/porep.md §5.2): 8 rounds, a 64-bit block counter in
  words 12–13 and a 64-bit stream id in words 14–15 (``nonce`` of 0 or 8 bytes);
* IETF ChaCha20 (synthetic challenges, docs/porep.md §9.2): 20 rounds, a 32-bit block counter in
  word 12 and a 12-byte nonce in words 13–15.

The state of ``n`` blocks is a ``(16, n)`` uint32 array, so every quarter-round step is
one numpy operation over all blocks; the four column (or diagonal) quarter-rounds of a
round run together on ``(4, n)`` row groups.  The keystream is the little-endian
serialization of the output words, blocks in counter order.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from sealagent.errors import InvalidInputError

BLOCK_BYTES: Final = 64
"""Keystream bytes per ChaCha block."""

BLOCK_WORDS: Final = 16
KEY_BYTES: Final = 32
IETF_NONCE_BYTES: Final = 12
STREAM_NONCE_BYTES: Final = 8

CONSTANTS: Final = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
"""``"expand 32-byte k"`` as four little-endian words."""

_DIAGONAL: Final = ([1, 2, 3, 0], [2, 3, 0, 1], [3, 0, 1, 2])
"""Row orders of b, c, d that line the diagonals up as columns."""
_UNDIAGONAL: Final = ([3, 0, 1, 2], [2, 3, 0, 1], [1, 2, 3, 0])

Words = npt.NDArray[np.uint32]


def _rotl(x: Words, bits: int, tmp: Words) -> None:
    """Rotate every word of ``x`` left by ``bits``, in place."""
    np.left_shift(x, bits, out=tmp)
    np.right_shift(x, 32 - bits, out=x)
    np.bitwise_or(x, tmp, out=x)


def _quarter_rounds(a: Words, b: Words, c: Words, d: Words, tmp: Words) -> None:
    """Four quarter-rounds at once, one per row of the ``(4, n)`` groups, in place."""
    a += b
    d ^= a
    _rotl(d, 16, tmp)
    c += d
    b ^= c
    _rotl(b, 12, tmp)
    a += b
    d ^= a
    _rotl(d, 8, tmp)
    c += d
    b ^= c
    _rotl(b, 7, tmp)


def _check_rounds(rounds: int) -> None:
    """ChaCha rounds come in column/diagonal pairs."""
    if rounds < 2 or rounds % 2:
        raise InvalidInputError(f"ChaCha needs a positive even number of rounds, got {rounds}")


def chacha_block_function(state: Words, rounds: int) -> Words:
    """Apply the ChaCha block function to a ``(16, n)`` uint32 state; returns the output words.

    Column ``j`` of ``state`` is the input of block ``j``; column ``j`` of the result is its
    16 output words (the permuted state plus the input state, mod 2^32).
    """
    _check_rounds(rounds)
    if state.ndim != 2 or state.shape[0] != BLOCK_WORDS or state.dtype != np.uint32:
        raise InvalidInputError(
            f"ChaCha state must be a (16, n) uint32 array, got {state.shape} {state.dtype}"
        )
    x = state.copy()
    a, b, c, d = x[0:4], x[4:8], x[8:12], x[12:16]
    tmp = np.empty_like(a)
    for _ in range(rounds // 2):
        _quarter_rounds(a, b, c, d, tmp)
        b[:], c[:], d[:] = b[_DIAGONAL[0]], c[_DIAGONAL[1]], d[_DIAGONAL[2]]
        _quarter_rounds(a, b, c, d, tmp)
        b[:], c[:], d[:] = b[_UNDIAGONAL[0]], c[_UNDIAGONAL[1]], d[_UNDIAGONAL[2]]
    x += state
    return x


def _key_words(key: bytes) -> Words:
    """The eight little-endian key words."""
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise InvalidInputError(f"a ChaCha key is {KEY_BYTES} bytes")
    return np.frombuffer(bytes(key), dtype="<u4").astype(np.uint32)


def _serialize(words: Words) -> bytes:
    """Little-endian bytes of ``(16, n)`` output words, block after block."""
    return np.ascontiguousarray(words.T).astype("<u4", copy=False).tobytes()


def chacha_keystream(
    key: bytes, nbytes: int, *, rounds: int, nonce: bytes = b"", counter: int = 0
) -> bytes:
    """``nbytes`` of ChaCha keystream starting at block ``counter``.

    ``nonce`` selects the layout: empty or 8 bytes → 64-bit counter and 64-bit stream id
    (rand_chacha; empty means stream 0); 12 bytes → IETF 32-bit counter.  Running past
    the last counter value is an error, never a silent wrap.
    """
    _check_rounds(rounds)
    if nbytes < 0:
        raise InvalidInputError(f"keystream length must be non-negative, got {nbytes}")
    nblocks = -(-nbytes // BLOCK_BYTES)
    if len(nonce) == IETF_NONCE_BYTES:
        counter_bits = 32
        tail = np.frombuffer(bytes(nonce), dtype="<u4")
    elif len(nonce) in (0, STREAM_NONCE_BYTES):
        counter_bits = 64
        tail = np.frombuffer(bytes(nonce).ljust(STREAM_NONCE_BYTES, b"\0"), dtype="<u4")
    else:
        raise InvalidInputError(
            f"ChaCha nonce must be 0, {STREAM_NONCE_BYTES} or {IETF_NONCE_BYTES} bytes, "
            f"got {len(nonce)}"
        )
    if counter < 0 or counter + nblocks > 1 << counter_bits:
        raise InvalidInputError(
            f"ChaCha block counter range [{counter}, {counter + nblocks}) "
            f"exceeds {counter_bits} bits"
        )
    state = np.empty((BLOCK_WORDS, nblocks), dtype=np.uint32)
    state[0:4] = np.array(CONSTANTS, dtype=np.uint32)[:, None]
    state[4:12] = _key_words(key)[:, None]
    counters = np.arange(counter, counter + nblocks, dtype=np.uint64)
    state[12] = (counters & 0xFFFFFFFF).astype(np.uint32)
    if counter_bits == 64:
        state[13] = (counters >> np.uint64(32)).astype(np.uint32)
        state[14:16] = tail[:, None]
    else:
        state[13:16] = tail[:, None]
    return _serialize(chacha_block_function(state, rounds))[:nbytes]


def chacha20_ietf_keystream(key: bytes, nonce: bytes, offset: int, nbytes: int) -> bytes:
    """Bytes ``[offset, offset + nbytes)`` of the IETF ChaCha20 stream (counter from 0)."""
    if len(nonce) != IETF_NONCE_BYTES:
        raise InvalidInputError(f"an IETF ChaCha20 nonce is {IETF_NONCE_BYTES} bytes")
    if offset < 0:
        raise InvalidInputError(f"keystream offset must be non-negative, got {offset}")
    first_block, skip = divmod(offset, BLOCK_BYTES)
    stream = chacha_keystream(
        key, skip + nbytes, rounds=20, nonce=nonce, counter=first_block
    )
    return stream[skip:]


def chacha_batch_words(keys: Words, nwords: int, *, rounds: int) -> Words:
    """The first ``nwords`` keystream words of many keys at once (rand_chacha layout).

    ``keys`` is an ``(n, 8)`` uint32 array of key words; every key starts at block 0 of
    stream 0, exactly like ``ChaCha{rounds}Rng::from_seed(key)``.  Returns ``(n, nwords)``
    uint32 words (word ``i`` = keystream bytes ``[4i, 4i+4)`` as little-endian).
    """
    _check_rounds(rounds)
    if keys.ndim != 2 or keys.shape[1] != KEY_BYTES // 4:
        raise InvalidInputError(f"keys must have shape (n, 8), got {keys.shape}")
    if nwords < 0:
        raise InvalidInputError(f"word count must be non-negative, got {nwords}")
    n = keys.shape[0]
    nblocks = -(-nwords // BLOCK_WORDS)
    state = np.zeros((BLOCK_WORDS, nblocks, n), dtype=np.uint32)
    state[0:4] = np.array(CONSTANTS, dtype=np.uint32)[:, None, None]
    state[4:12] = keys.T.astype(np.uint32, copy=False)[:, None, :]
    state[12] = np.arange(nblocks, dtype=np.uint32)[:, None]
    out = chacha_block_function(state.reshape(BLOCK_WORDS, nblocks * n), rounds)
    # (16, nblocks, n) → (n, nblocks, 16) → (n, nblocks·16): words in stream order per key.
    per_key = out.reshape(BLOCK_WORDS, nblocks, n).transpose(2, 1, 0).reshape(n, -1)
    return np.ascontiguousarray(per_key[:, :nwords])
