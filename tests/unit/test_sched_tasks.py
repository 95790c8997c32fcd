"""Task types: Lotus' short names, priority order, tiers and (proof, task type) pairs."""

from __future__ import annotations

import pytest

from sealagent.errors import SchedulerError
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import SectorID
from sealagent.vocab.tasks import TASK_TYPES_BY_ORDER, SealTaskType, TaskType, parse_task_type

T = TaskType


def test_short_names_match_lotus() -> None:
    assert {t.short: t.value for t in TaskType} == {
        "DC": "seal/v0/datacid", "AP": "seal/v0/addpiece", "PC1": "seal/v0/precommit/1",
        "PC2": "seal/v0/precommit/2", "C1": "seal/v0/commit/1", "C2": "seal/v0/commit/2",
        "FIN": "seal/v0/finalize", "FUS": "seal/v0/finalizeunsealed", "GET": "seal/v0/fetch",
        "UNS": "seal/v0/unseal", "RU": "seal/v0/replicaupdate",
        "PR1": "seal/v0/provereplicaupdate/1", "PR2": "seal/v0/provereplicaupdate/2",
        "GSK": "seal/v0/regensectorkey", "FRU": "seal/v0/finalize/replicaupdate",
        "DL": "seal/v0/download/sector", "WDP": "post/v0/windowproof",
        "WNP": "post/v0/winningproof"}


def test_priority_order_table_matches_lotus() -> None:
    assert [(t.short, t.order) for t in TASK_TYPES_BY_ORDER] == [
        ("WNP", -6), ("WDP", -5), ("FUS", -4), ("FIN", -3), ("DL", -2), ("GET", -1),
        ("FRU", 0), ("UNS", 1), ("C1", 2), ("C2", 3), ("PC2", 4), ("PC1", 5), ("PR1", 6),
        ("PR2", 7), ("RU", 8), ("AP", 9), ("DC", 10), ("GSK", 11)]


def test_high_priority_tier_is_the_negative_order_values_fru_is_not_in_it() -> None:
    assert {t.short for t in TaskType if t.high_priority} == {"WNP", "WDP", "FUS", "FIN",
                                                               "DL", "GET"}
    assert not T.FINALIZE_REPLICA_UPDATE.high_priority


def test_worker_kind_separates_post_workers() -> None:
    assert T.WINNING_POST.worker_kind == "WinPost"
    assert T.WINDOW_POST.worker_kind == "WdPoSt"
    assert {t.worker_kind for t in TaskType} == {"WinPost", "WdPoSt", "Sealing"}


def test_only_datacid_is_sector_size_independent() -> None:
    assert [t for t in TaskType if not t.sector_sized] == [T.DATA_CID]


@pytest.mark.parametrize(("text", "expected"), [("PC1", T.PRECOMMIT1), ("pc2", T.PRECOMMIT2),
                                                ("seal/v0/fetch", T.FETCH),
                                                (" GET ", T.FETCH), (T.COMMIT2, T.COMMIT2)])
def test_parse_task_type_accepts_names_and_short_names(text: str, expected: TaskType) -> None:
    assert parse_task_type(text) is expected


@pytest.mark.parametrize("bad", ["PC3", "", "seal/v0/nope", 5])
def test_parse_task_type_refuses_unknown_names(bad: object) -> None:
    with pytest.raises(SchedulerError):
        parse_task_type(bad)  # type: ignore[arg-type]


def test_seal_task_type_renders_like_lotus_and_parses_back() -> None:
    seal_task = SealTaskType(RegisteredSealProof.StackedDrg32GiBV1_1, T.PRECOMMIT1)
    assert str(seal_task) == "8:seal/v0/precommit/1"
    assert SealTaskType.parse("8:seal/v0/precommit/1") == seal_task
    for bad in ("seal/v0/precommit/1", "99:seal/v0/precommit/1", "8:nope"):
        with pytest.raises(SchedulerError):
            SealTaskType.parse(bad)


def test_sector_id_renders_as_lotus_file_name() -> None:
    assert str(SectorID(1000, 9)) == "s-t01000-9"
