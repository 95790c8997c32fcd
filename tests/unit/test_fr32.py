"""Fr32 padding: sizes, pad/unpad, streaming and range helpers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealagent.errors import InvalidInputError
from sealagent.proofs.fr32 import (
    iter_padded,
    iter_unpadded,
    pad,
    pad_blocks,
    to_padded_size,
    to_unpadded_size,
    unpad,
    unpad_blocks,
    unpad_range,
)


def bitwise_pad(data: bytes) -> bytes:
    """Slow reference: 254-bit chunks of the LE bit stream, each in a zero-topped element."""
    bits = [(byte >> i) & 1 for byte in data for i in range(8)]
    out: list[int] = []
    for start in range(0, len(bits), 254):
        chunk = bits[start : start + 254]
        out += chunk + [0] * (256 - len(chunk))
    return bytes(
        sum(bit << i for i, bit in enumerate(out[k : k + 8])) for k in range(0, len(out), 8)
    )


class ShortReads(io.BytesIO):
    """A stream that hands out at most ``step`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self._step = step
        self.calls = 0

    def read(self, size: int | None = -1) -> bytes:
        self.calls += 1
        return super().read(self._step if size is None or size < 0 else min(self._step, size))


@pytest.mark.parametrize(
    ("unpadded", "padded"),
    [(0, 0), (1, 1), (30, 30), (32, 33), (127, 128), (254, 256), (508, 512), (2032, 2048)],
)
def test_size_conversions(unpadded: int, padded: int) -> None:
    assert to_padded_size(unpadded) == padded
    assert to_unpadded_size(padded) == unpadded


@given(st.integers(min_value=0, max_value=1 << 40))
def test_size_round_trip(unpadded: int) -> None:
    assert to_unpadded_size(to_padded_size(unpadded)) == unpadded


@pytest.mark.parametrize("bad", [-1, 1.5, True, "127"])
def test_size_conversions_reject_bad_input(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        to_padded_size(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        to_unpadded_size(bad)  # type: ignore[arg-type]


def test_single_ff_element() -> None:
    padded = pad(b"\xff" * 32)
    assert padded[:31] == b"\xff" * 31
    assert padded[31] == 0x3F
    assert padded[32] == 0x03
    assert len(padded) == 64


@settings(max_examples=60)
@given(st.binary(max_size=700))
def test_pad_matches_bitwise_reference(data: bytes) -> None:
    assert pad(data) == bitwise_pad(data)


@given(st.binary(max_size=2000))
def test_unpad_inverts_pad(data: bytes) -> None:
    assert unpad(pad(data), len(data)) == data


@given(st.binary(max_size=1600))
def test_unpad_is_exact_on_whole_blocks(raw: bytes) -> None:
    data = raw[: len(raw) // 127 * 127]
    assert unpad(pad(data)) == data
    assert len(pad(data)) == len(data) // 127 * 128


@given(st.binary(max_size=2000))
def test_padded_elements_have_top_bits_clear(data: bytes) -> None:
    padded = pad(data)
    assert len(padded) % 32 == 0
    assert all(top & 0xC0 == 0 for top in padded[31::32])


@pytest.mark.parametrize(("size", "elements"), [(1, 1), (30, 1), (31, 1), (32, 2), (64, 3),
                                                (95, 3), (96, 4), (126, 4)])
def test_trailing_partial_block_length(size: int, elements: int) -> None:
    assert len(pad(bytes(size))) == 32 * elements
    assert len(pad(bytes(127 + size))) == 128 + 32 * elements


def test_unpad_ignores_padding_bits() -> None:
    data = bytes(range(127))
    padded = bytearray(pad(data))
    for top in range(31, 128, 32):
        padded[top] |= 0xC0
    assert unpad(bytes(padded)) == data


def test_unpad_rejects_too_large_size() -> None:
    with pytest.raises(InvalidInputError):
        unpad(bytes(128), 128)
    with pytest.raises(InvalidInputError):
        unpad(bytes(128), -1)


def test_block_helpers_reject_wrong_shapes() -> None:
    with pytest.raises(InvalidInputError):
        pad_blocks(np.zeros((2, 128), np.uint8))
    with pytest.raises(InvalidInputError):
        unpad_blocks(np.zeros((2, 127), np.uint8))
    with pytest.raises(InvalidInputError):
        pad_blocks(np.zeros((2, 127), np.uint16))


@pytest.fixture
def sample() -> bytes:
    """About 4 KiB of varied bytes, not a whole number of blocks."""
    return np.random.default_rng(7).integers(0, 256, 127 * 32 + 45, np.uint8).tobytes()


@pytest.mark.parametrize("chunk_blocks", [1, 3, 100])
def test_iter_padded_chunks_concatenate_to_pad(sample: bytes, chunk_blocks: int) -> None:
    chunks = list(iter_padded(io.BytesIO(sample), chunk_blocks=chunk_blocks))
    assert b"".join(chunks) == pad(sample)
    assert all(len(c) == chunk_blocks * 128 for c in chunks[:-1])


def test_iter_padded_reads_exactly_length(sample: bytes) -> None:
    stream = io.BytesIO(sample)
    assert b"".join(iter_padded(stream, 127 * 5, chunk_blocks=2)) == pad(sample[: 127 * 5])
    assert stream.tell() == 127 * 5


def test_iter_padded_survives_short_reads(sample: bytes) -> None:
    stream = ShortReads(sample, 10)
    assert b"".join(iter_padded(stream, len(sample), chunk_blocks=4)) == pad(sample)
    assert stream.calls > len(sample) // 10


def test_iter_padded_raises_on_short_stream(sample: bytes) -> None:
    with pytest.raises(InvalidInputError, match="ended"):
        list(iter_padded(io.BytesIO(sample), len(sample) + 1))


def test_iter_padded_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInputError):
        list(iter_padded(b"", chunk_blocks=0))
    with pytest.raises(InvalidInputError):
        list(iter_padded(b"", -5))


@settings(max_examples=50)
@given(st.data())
def test_unpad_range_of_buffer(data: st.DataObject) -> None:
    raw = np.random.default_rng(3).integers(0, 256, 127 * 9, np.uint8).tobytes()
    offset = data.draw(st.integers(0, len(raw)))
    length = data.draw(st.integers(0, len(raw) - offset))
    chunk_blocks = data.draw(st.integers(1, 4))
    padded = pad(raw)
    assert unpad_range(padded, offset, length) == raw[offset : offset + length]
    assert b"".join(iter_unpadded(padded, offset, length, chunk_blocks)) == raw[
        offset : offset + length
    ]


def test_unpad_range_of_file(tmp_path: Path, sample: bytes) -> None:
    path = tmp_path / "padded"
    path.write_bytes(pad(sample))
    with path.open("rb") as file:
        assert unpad_range(file, 0, len(sample)) == sample
        assert unpad_range(file, 300, 1000) == sample[300:1300]
        assert unpad_range(file, len(sample) - 7, 7) == sample[-7:]


def test_unpad_range_rejects_out_of_range(sample: bytes) -> None:
    padded = pad(sample)
    holds = to_unpadded_size(len(padded))
    with pytest.raises(InvalidInputError, match="beyond"):
        unpad_range(padded, holds - 3, 4)
    with pytest.raises(InvalidInputError):
        unpad_range(padded, -1, 4)
    with pytest.raises(InvalidInputError):
        list(iter_unpadded(padded, 0, 4, chunk_blocks=0))
