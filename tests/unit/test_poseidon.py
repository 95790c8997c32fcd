"""Poseidon: the fast permutation against the reference, the byte API, the row hasher."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from sealagent.errors import InvalidInputError
from sealagent.proofs import poseidon
from sealagent.proofs.field import R


def _random_state(rng: random.Random, arity: int) -> list[int]:
    return [rng.randrange(R) for _ in range(arity + 1)]


def _encode(values: list[int]) -> np.ndarray:
    raw = b"".join(v.to_bytes(32, "little") for v in values)
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32)


@pytest.mark.parametrize("arity", poseidon.ARITIES)
def test_fast_permutation_equals_reference(arity: int) -> None:
    rng = random.Random(arity)
    consts = poseidon.constants(arity)
    edge = [[0] * (arity + 1), [R - 1] * (arity + 1)]
    for state in edge + [_random_state(rng, arity) for _ in range(3)]:
        assert poseidon.permute(state, consts) == poseidon.permute_reference(state, consts)


@pytest.mark.parametrize("arity", [2, 4, 8, 11])
@pytest.mark.parametrize("dense_max_width", [0, 12])
def test_both_partial_round_forms_equal_reference(
    monkeypatch: pytest.MonkeyPatch, arity: int, dense_max_width: int
) -> None:
    """The dense and the sparse partial rounds are exact at any width, not only where used."""
    monkeypatch.setattr(poseidon, "DENSE_PARTIAL_MAX_WIDTH", dense_max_width)
    consts = poseidon.constants(arity)
    fast = poseidon._fast_schedule(consts.full_rounds, consts.partial_rounds,
                                   consts.round_constants, consts.mds)
    dense = isinstance(fast.partial, poseidon.DensePartialRounds)
    assert dense == (dense_max_width > arity) and len(fast.partial) == consts.partial_rounds
    rng = random.Random(200 + arity)
    for state in [[R - 1] * (arity + 1), _random_state(rng, arity)]:
        lanes = [np.array([x, 1, R - 1 - x], dtype=object) for x in state]
        by_lane = poseidon._permute_lanes(lanes, fast)
        for j, column in enumerate([state, [1] * (arity + 1), [R - 1 - x for x in state]]):
            expected = poseidon.permute_reference(column, consts)
            assert poseidon._permute_lanes(list(column), fast) == expected
            assert [int(lane[j]) for lane in by_lane] == expected


def test_partial_round_form_per_width() -> None:
    """Width 3 keeps the dense integer matrix; each of its rounds grows values by < 2^9."""
    fast = poseidon.constants(2).fast
    assert isinstance(fast.partial, poseidon.DensePartialRounds)
    assert fast.pre_matrix == fast.int_mds
    assert 3 * max(max(row) for row in fast.int_mds) < 1 << 9
    for arity in poseidon.ARITIES[1:]:
        fast = poseidon.constants(arity).fast
        assert isinstance(fast.partial, poseidon.SparsePartialRounds)


def test_permutation_is_not_trivial() -> None:
    consts = poseidon.constants(2)
    a = poseidon.permute([3, 1, 2], consts)
    b = poseidon.permute([3, 2, 1], consts)
    assert a != b and len(set(a)) == 3


def test_constants_are_cached_and_consistent() -> None:
    consts = poseidon.constants(8)
    assert poseidon.constants(8) is consts
    assert consts.width == 9 and len(consts.round_constants) == 9 * (8 + 57)
    assert all(consts.mds[i][j] == consts.mds[j][i] for i in range(9) for j in range(9))
    # Cauchy entries really are 1 / (i + j + t).
    assert all(consts.mds[i][j] * (i + j + 9) % R == 1 for i in range(9) for j in range(9))
    fast = consts.fast
    assert len(fast.partial) == 57
    assert len(fast.head_constants) + 1 + len(fast.tail_constants) == 8
    assert max(max(row) for row in fast.int_mds) < 1 << 40


def test_grain_differs_per_instance() -> None:
    a = poseidon.grain_round_constants(3, 8, 55)
    b = poseidon.grain_round_constants(3, 8, 56)
    assert len(a) == 189 and len(b) == 192 and a[0] != b[0]


def test_unsupported_arity_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="arity 3"):
        poseidon.constants(3)
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash([bytes(32)] * 3)
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash([])


def test_hash_rejects_bad_elements() -> None:
    good = (5).to_bytes(32, "little")
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash([good, R.to_bytes(32, "little")])
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash([good, b"\x01" * 31])
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash_ints([1, R])
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash_ints([1, -1])
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash_ints([1, 2, 3], arity=2)
    with pytest.raises(InvalidInputError):
        poseidon.permute([1, 2], poseidon.constants(2))
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash_md([1])


def test_bytes_and_int_apis_agree() -> None:
    values = [R - 1, 12345]
    digest = poseidon.poseidon_hash([v.to_bytes(32, "little") for v in values])
    assert int.from_bytes(digest, "little") == poseidon.poseidon_hash_ints(values)
    assert int.from_bytes(digest, "little") < R
    tag_only = poseidon.poseidon_hash_ints(values, tag=poseidon.merkle_tree_tag(2), arity=2)
    assert tag_only == poseidon.poseidon_hash_ints(values)


def test_constant_length_pads_with_zeros() -> None:
    short = poseidon.poseidon_constant_length([7, 9], 4)
    state = [poseidon.constant_length_tag(2), 7, 9, 0, 0]
    assert short == poseidon.permute_reference(state, poseidon.constants(4))[1]
    assert short != poseidon.poseidon_hash_ints([7, 9, 0, 0])


def test_hash_md_short_last_chunk_is_zero_padded() -> None:
    values = list(range(1, 40))  # first element, one chunk of 35, then 3 more
    acc = poseidon.poseidon_hash_ints(values[:36])
    acc = poseidon.poseidon_hash_ints([acc, *values[36:]], arity=36)
    assert poseidon.poseidon_hash_md(values) == acc


@pytest.mark.parametrize("arity", [2, 8, 11])
@pytest.mark.parametrize("min_array_groups", [1, 5])
def test_level_equals_single_hashes(
    monkeypatch: pytest.MonkeyPatch, arity: int, min_array_groups: int
) -> None:
    """Rows are hashed alike with object-array lanes (1) and one group at a time (5)."""
    monkeypatch.setattr(poseidon, "MIN_ARRAY_GROUPS", min_array_groups)
    rng = random.Random(100 + arity)
    values = [rng.randrange(R) for _ in range(3 * arity)] + [R - 1] * arity
    parents = poseidon.poseidon_hash_level(_encode(values), arity)
    assert parents.shape == (4, 32) and parents.dtype == np.uint8
    for i in range(4):
        expected = poseidon.poseidon_hash_ints(values[i * arity:(i + 1) * arity])
        assert int.from_bytes(parents[i].tobytes(), "little") == expected


def test_level_is_chunked_transparently(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rng = random.Random(7)
    row = _encode([rng.randrange(R) for _ in range(2 * 11)])
    whole = poseidon.poseidon_hash_level(row, 2)
    monkeypatch.setattr(poseidon, "LEVEL_CHUNK", 3)
    monkeypatch.setattr(poseidon, "MIN_ARRAY_GROUPS", 3)  # the last chunk, 2 groups, as ints
    path = tmp_path / "row.dat"
    path.write_bytes(row.tobytes())
    mapped = np.memmap(path, dtype=np.uint8, mode="r", shape=(22, 32))
    assert np.array_equal(poseidon.poseidon_hash_level(mapped, 2), whole)
    del mapped


def test_level_rejects_bad_rows() -> None:
    row = _encode([1, 2, 3, 4])
    with pytest.raises(InvalidInputError, match="groups of 8"):
        poseidon.poseidon_hash_level(row, 8)
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash_level(row.astype(np.uint16), 2)
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash_level(row.reshape(2, 64), 2)
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash_level(row[:0], 2)
    with pytest.raises(InvalidInputError):
        poseidon.poseidon_hash_level(row, 3)
    bad = _encode([1, 2, 3, R])
    with pytest.raises(InvalidInputError, match="canonical"):
        poseidon.poseidon_hash_level(bad, 2)
    # A top byte at the limit but a value below r is accepted.
    edge = _encode([1, 2, 3, R - 1])
    assert poseidon.poseidon_hash_level(edge, 2).shape == (2, 32)


def _permute_sparse(state: list[int], s: poseidon.SparseSchedule) -> list[int]:
    """The permutation exactly as :class:`poseidon.SparseSchedule` documents its steps."""
    half = len(s.full_constants) // 2

    def full(state: list[int], constants: tuple[int, ...],
             matrix: tuple[tuple[int, ...], ...]) -> list[int]:
        boxed = [pow(x + c, 5, R) for x, c in zip(state, constants, strict=True)]
        return [sum(m * x for m, x in zip(row, boxed, strict=True)) % R for row in matrix]

    for rnd in range(half - 1):
        state = full(state, s.full_constants[rnd], s.mds)
    state = full(state, s.full_constants[half - 1], s.pre_sparse)
    for a, w, v in zip(s.partial_constants, s.sparse_rows, s.sparse_columns, strict=True):
        x = pow(state[0] + a, 5, R)
        rest = state[1:]
        first = (s.m00 * x + sum(wi * y for wi, y in zip(w, rest, strict=True))) % R
        state = [first, *((y + vi * x) % R for y, vi in zip(rest, v, strict=True))]
    for rnd in range(half, 2 * half):
        state = full(state, s.full_constants[rnd], s.mds)
    return state


@pytest.mark.parametrize("arity", [2, 4, 8, 11])
def test_sparse_schedule_equals_reference(arity: int) -> None:
    schedule = poseidon.sparse_schedule(arity)
    consts = poseidon.constants(arity)
    rng = random.Random(arity)
    for _ in range(3):
        state = [rng.randrange(R) for _ in range(arity + 1)]
        assert _permute_sparse(state, schedule) == poseidon.permute_reference(state, consts)
