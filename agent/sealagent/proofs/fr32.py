"""Fr32 padding: 127 user bytes become four 32-byte field elements (docs/porep.md §2).

The unpadded input is a little-endian bit stream cut into 254-bit chunks; each chunk is
followed by two zero bits, so the top two bits of every 32-byte element are zero.  Per
127-byte block this is four shifted byte windows, which numpy computes for many blocks
at once.

A trailing partial block (only outside sealing, where pieces are ``127·2^k`` bytes) is
zero-filled and yields ``ceil(8·n / 254)`` whole elements, as rust's ``Fr32Reader`` does.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from sealagent.errors import InvalidInputError

UNPADDED_BLOCK: Final = 127
"""User bytes per padding block."""

PADDED_BLOCK: Final = 128
"""Padded bytes per block (four field elements)."""

DATA_BITS: Final = 254
"""Data bits in one padded element."""

ELEMENT_BITS: Final = 256
"""Bits in one padded element."""

DEFAULT_CHUNK_BLOCKS: Final = 8192
"""Blocks per chunk in the streaming helpers (about 1 MiB)."""

BytesLike: TypeAlias = bytes | bytearray | memoryview
"""In-memory bytes the helpers accept."""

# Element j of a block starts at bit 254·j: byte 31·j + (6·j) // 8, bit (6·j) % 8.
_ELEMENT_WINDOWS: Final = tuple((31 * j + (6 * j) // 8, (6 * j) % 8) for j in range(4))


def _check_count(name: str, value: int) -> None:
    """Reject negative or non-integer sizes and offsets."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{name} must be a non-negative integer, got {value!r}")


def to_padded_size(unpadded: int) -> int:
    """Padded bytes for ``unpadded`` user bytes (rust ``to_padded_bytes``, rounded up)."""
    _check_count("unpadded size", unpadded)
    full, rest = divmod(unpadded * 8, DATA_BITS)
    return -(-(full * ELEMENT_BITS + rest) // 8)


def to_unpadded_size(padded: int) -> int:
    """User bytes held by ``padded`` bytes (rust ``to_unpadded_bytes``, rounded down)."""
    _check_count("padded size", padded)
    full, rest = divmod(padded * 8, ELEMENT_BITS)
    return (full * DATA_BITS + rest) // 8


def pad_blocks(blocks: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Pad an ``(n, 127)`` uint8 array of whole blocks into ``(n, 128)``."""
    if blocks.ndim != 2 or blocks.shape[1] != UNPADDED_BLOCK or blocks.dtype != np.uint8:
        raise InvalidInputError(f"expected an (n, 127) uint8 array, got {blocks.shape}")
    src = np.zeros((blocks.shape[0], PADDED_BLOCK + 1), dtype=np.uint8)
    src[:, :UNPADDED_BLOCK] = blocks
    out = np.empty((blocks.shape[0], PADDED_BLOCK), dtype=np.uint8)
    for j, (start, shift) in enumerate(_ELEMENT_WINDOWS):
        element = out[:, 32 * j : 32 * j + 32]
        low = src[:, start : start + 32]
        if shift:
            np.right_shift(low, shift, out=element)
            element |= src[:, start + 1 : start + 33] << (8 - shift)
        else:
            element[:] = low
        element[:, 31] &= 0x3F
    return out


def unpad_blocks(blocks: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Unpad an ``(n, 128)`` uint8 array of whole blocks into ``(n, 127)``.

    The two padding bits of each element are ignored, as rust's ``write_unpadded`` does.
    """
    if blocks.ndim != 2 or blocks.shape[1] != PADDED_BLOCK or blocks.dtype != np.uint8:
        raise InvalidInputError(f"expected an (n, 128) uint8 array, got {blocks.shape}")
    out = np.zeros((blocks.shape[0], PADDED_BLOCK + 1), dtype=np.uint8)
    for j, (start, shift) in enumerate(_ELEMENT_WINDOWS):
        element = blocks[:, 32 * j : 32 * j + 32].copy()
        element[:, 31] &= 0x3F
        out[:, start : start + 32] |= element << shift
        if shift:
            out[:, start + 1 : start + 33] |= element >> (8 - shift)
    return out[:, :UNPADDED_BLOCK]


def _blocks_of(data: BytesLike, block: int) -> npt.NDArray[np.uint8]:
    """``data`` zero-filled to whole blocks, as an ``(n, block)`` array."""
    n_blocks = -(-len(data) // block)
    arr = np.zeros(n_blocks * block, dtype=np.uint8)
    arr[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    return arr.reshape(n_blocks, block)


def pad(data: BytesLike) -> bytes:
    """Fr32-pad ``data``; a trailing partial block yields ``ceil(8·n / 254)`` elements."""
    full, rest = divmod(len(data), UNPADDED_BLOCK)
    out_len = full * PADDED_BLOCK + -(-rest * 8 // DATA_BITS) * 32
    return pad_blocks(_blocks_of(data, UNPADDED_BLOCK)).tobytes()[:out_len]


def unpad(data: BytesLike, unpadded_size: int | None = None) -> bytes:
    """Recover the user bytes from padded ``data``: the exact inverse of :func:`pad`.

    ``unpadded_size`` defaults to everything ``data`` holds (``to_unpadded_size``); pass
    the original length to undo the zero fill of a trailing partial block.
    """
    available = to_unpadded_size(len(data))
    size = available if unpadded_size is None else unpadded_size
    _check_count("unpadded size", size)
    if size > available:
        raise InvalidInputError(f"{len(data)} padded bytes hold {available} bytes, not {size}")
    return unpad_blocks(_blocks_of(data, PADDED_BLOCK)).tobytes()[:size]


def read_full(source: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, retrying short reads; fewer only at end of stream."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        part = source.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def iter_padded(
    source: BinaryIO | BytesLike,
    length: int | None = None,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
) -> Iterator[bytes]:
    """Pad ``source`` chunk by chunk; the concatenated chunks equal ``pad(all bytes)``.

    With ``length`` exactly that many bytes are read, and a source that ends earlier
    raises :class:`InvalidInputError`; without it the source is read to its end.
    """
    if length is not None:
        _check_count("length", length)
    if chunk_blocks < 1:
        raise InvalidInputError(f"chunk_blocks must be positive, got {chunk_blocks}")
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, BytesLike) else source
    chunk = chunk_blocks * UNPADDED_BLOCK
    consumed = 0
    while length is None or consumed < length:
        want = chunk if length is None else min(chunk, length - consumed)
        data = read_full(stream, want)
        consumed += len(data)
        if len(data) < want and length is not None:
            raise InvalidInputError(f"source ended after {consumed} of {length} bytes")
        if data:
            yield pad(data)
        if len(data) < want:
            return


def _padded_length(source: BinaryIO | BytesLike) -> int:
    """Total padded bytes in a buffer or a seekable stream."""
    if isinstance(source, BytesLike):
        return len(source)
    return source.seek(0, io.SEEK_END)


def _read_padded(source: BinaryIO | BytesLike, start: int, size: int) -> bytes:
    """Padded bytes ``[start, start + size)`` of a buffer or a seekable stream."""
    if isinstance(source, BytesLike):
        return bytes(memoryview(source)[start : start + size])
    source.seek(start)
    return read_full(source, size)


def iter_unpadded(
    source: BinaryIO | BytesLike,
    offset: int,
    length: int,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
) -> Iterator[bytes]:
    """User bytes ``[offset, offset + length)`` of padded data, chunk by chunk.

    ``source`` is a padded buffer or a seekable binary file; offsets are in unpadded
    space.  A range beyond the data raises :class:`InvalidInputError`.
    """
    _check_count("offset", offset)
    _check_count("length", length)
    if chunk_blocks < 1:
        raise InvalidInputError(f"chunk_blocks must be positive, got {chunk_blocks}")
    available = to_unpadded_size(_padded_length(source))
    if offset + length > available:
        raise InvalidInputError(
            f"range {offset}+{length} is beyond the {available} bytes the padded data holds"
        )
    end = offset + length
    block = offset // UNPADDED_BLOCK
    while block * UNPADDED_BLOCK < end:
        stop = min(block + chunk_blocks, -(-end // UNPADDED_BLOCK))
        raw = _read_padded(source, block * PADDED_BLOCK, (stop - block) * PADDED_BLOCK)
        data = unpad(raw)
        base = block * UNPADDED_BLOCK
        yield data[max(offset - base, 0) : end - base]
        block = stop


def unpad_range(source: BinaryIO | BytesLike, offset: int, length: int) -> bytes:
    """User bytes ``[offset, offset + length)`` of padded data, as one bytes object."""
    return b"".join(iter_unpadded(source, offset, length))
