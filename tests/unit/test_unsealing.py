"""The pure parts of unsealing: where pieces lie, reading them back, the agent's padding."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

import pytest

from sealagent.errors import ManagerError, StorageError
from sealagent.manager.config import ManagerConfig
from sealagent.manager.fsm import SectorInfo, SectorPiece, SectorState
from sealagent.manager.local_agent import local_task_types
from sealagent.manager.tasks import TaskRecord, TaskState
from sealagent.manager.unsealing import (
    READ_LIMIT,
    PieceSpan,
    check_unsealable,
    find_piece,
    piece_spans,
    read_window,
    result_story,
    unseal_params,
)
from sealagent.phases import Phase
from sealagent.proofs.fr32 import pad, unpad
from sealagent.protocol import Report, SectorFile
from sealagent.storage.layout import fetch_temp_path
from sealagent.vocab.registry import resolve_proof
from sealagent.vocab.sectors import FileType
from sealagent.vocab.tasks import TaskType
from sealagent.worker.unseal_output import write_unsealed

PROOF = resolve_proof("StackedDrg2KiBV1_1")


def sector(number: int, pieces: tuple[SectorPiece, ...],
           state: SectorState = SectorState.PROVING) -> SectorInfo:
    """A sector holding ``pieces`` with a ticket and CommD."""
    return SectorInfo(number, PROOF.value, state, pieces, ticket="ab" * 32,
                      comm_d="baga6ea4seaqxyz")


DEAL = SectorPiece(512, "baga-deal", deal=True, source="s-t01000-1", added=True)
OTHER = SectorPiece(256, "baga-other", deal=True, source="s-t01000-1", added=True)
FILLER = SectorPiece(256, "baga-zero", added=True)
TAIL = SectorPiece(1024, "baga-zero-1024", added=True)


def test_piece_spans_follow_each_other_fillers_included() -> None:
    s = sector(3, (DEAL, FILLER, OTHER, TAIL))
    assert piece_spans(s) == [PieceSpan("baga-deal", 3, 0, 0, 512),
                              PieceSpan("baga-other", 3, 2, 768, 256)]
    assert piece_spans(s)[0].size == 508 and piece_spans(s)[1].size == 254
    assert piece_spans(sector(4, (FILLER, TAIL))) == []


def test_find_piece_prefers_an_unsealed_copy_then_a_sealed_sector() -> None:
    sealing = sector(1, (DEAL, FILLER, TAIL), SectorState.PRECOMMIT1)
    sealed = sector(2, (DEAL, FILLER, TAIL))
    later = sector(5, (DEAL, FILLER, TAIL))
    every = [later, sealing, sealed]
    assert find_piece(every, "baga-deal", {})[0] is sealed
    assert find_piece(every, "baga-deal", {5: True})[0] is later
    assert find_piece(every, "baga-deal", {1: True})[0] is sealing
    with pytest.raises(ManagerError, match="no sector holds a deal piece with CID baga-x"):
        find_piece(every, "baga-x", {})
    # a zero filler is not a deal piece, though every CC sector has one
    with pytest.raises(ManagerError):
        find_piece(every, "baga-zero", {})


def test_only_a_proving_sector_may_be_unsealed() -> None:
    check_unsealable(sector(1, (DEAL,)))
    with pytest.raises(ManagerError, match="sector 1 is in PreCommit2, not sealed yet"):
        check_unsealable(sector(1, (DEAL,), SectorState.PRECOMMIT2))


def test_unseal_params_cover_the_whole_sector() -> None:
    params = unseal_params(1000, sector(7, (DEAL, FILLER, TAIL)))
    assert params == {"sector": {"miner": 1000, "number": 7, "proof": PROOF.name},
                      "ticket": "ab" * 32, "comm_d": "baga6ea4seaqxyz",
                      "offset": 0, "size": 2032}


def test_read_window_gives_the_exact_bytes_of_any_range() -> None:
    rng = random.Random(5)
    original = rng.randbytes(2032)
    padded = pad(original)
    span = PieceSpan("c", 0, 1, 1024, 1024)
    piece = original[1016:]
    for offset, length in [(0, 1016), (0, 1), (126, 2), (127, 127), (1015, 1), (500, 0),
                           *((o, rng.randrange(0, 1016 - o + 1))
                             for o in (rng.randrange(1016) for _ in range(40)))]:
        start, size, skip = read_window(span, offset, length)
        assert start % 128 == 0 and size % 128 == 0
        assert unpad(padded[start:start + size])[skip:skip + length] \
            == piece[offset:offset + length], (offset, length)


def test_read_window_refuses_ranges_outside_the_piece_or_too_long() -> None:
    span = PieceSpan("c", 0, 0, 0, 1024)
    with pytest.raises(ManagerError, match="outside the 1016-byte piece"):
        read_window(span, 1000, 17)
    with pytest.raises(ManagerError, match="outside"):
        read_window(span, -1, 1)
    big = PieceSpan("c", 0, 0, 0, 4 * READ_LIMIT)
    with pytest.raises(ManagerError, match="at most"):
        read_window(big, 0, READ_LIMIT + 1)


def _task(**changes: object) -> TaskRecord:
    values: dict[str, object] = dict(
        task_id="t-9", seq=9, sector=3, phase=Phase.UNSEAL, proof=PROOF.value, priority=0,
        params={}, state=TaskState.DONE, attempt=2, worker_id="w", created_at=1.0,
        state_since=5.0, started_at=2.0, finished_at=4.5)
    values.update(changes)
    return TaskRecord(**values)  # type: ignore[arg-type]


def test_result_story_tells_where_and_how_long() -> None:
    done = Report("t-9", 2, True, {"written": 2032},
                  declared=(SectorFile("p1", FileType.SEALED), SectorFile("p1", FileType.UNSEALED)))
    kind, message = result_story(_task(), done, "reader")
    assert kind == "Unsealed"
    assert message == ("Unseal task t-9 (attempt 2) done on reader in 2.50s: 2032 bytes "
                       "unsealed; the unsealed copy is in p1")
    failed = Report("t-9", 2, False, error="no cache")
    assert result_story(_task(state=TaskState.FAILED), failed, "reader") == (
        "UnsealFailed", "Unseal task t-9 (attempt 2) failed on reader in 2.50s: no cache")


def test_write_unsealed_pads_into_the_sector_layout(tmp_path: Path) -> None:
    data = os.urandom(2032)
    unpadded = tmp_path / "out"
    unpadded.write_bytes(data)
    unsealed = tmp_path / "unsealed" / "s-t01000-3"
    write_unsealed(unpadded, unsealed, 2048)
    assert unsealed.read_bytes() == pad(data)
    assert not unpadded.exists() and not fetch_temp_path(unsealed).exists()
    # a shorter output is zero-filled to the sector size
    unpadded.write_bytes(data[:1016])
    write_unsealed(unpadded, unsealed, 2048)
    assert unsealed.read_bytes() == pad(data[:1016] + bytes(1016))


def test_write_unsealed_refuses_more_than_a_sector(tmp_path: Path) -> None:
    unpadded = tmp_path / "out"
    unpadded.write_bytes(bytes(2033))
    unsealed = tmp_path / "unsealed" / "s-t01000-3"
    with pytest.raises(StorageError, match="more than a 2048-byte sector"):
        write_unsealed(unpadded, unsealed, 2048)
    assert not unsealed.exists() and not fetch_temp_path(unsealed).exists()


def test_allow_unseal_decides_whether_the_managers_own_agent_unseals() -> None:
    config = ManagerConfig()
    assert TaskType.UNSEAL in local_task_types(config)
    off = replace(config, storage=replace(config.storage, allow_unseal=False))
    assert TaskType.UNSEAL not in local_task_types(off)
    assert TaskType.FINALIZE in local_task_types(off)
