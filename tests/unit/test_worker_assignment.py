"""Assignments as the manager sends them: parsing, checks, phase requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sealagent.errors import InvalidInputError
from sealagent.phases import (
    Commit2Request,
    Phase,
    PreCommit1Request,
    SectorPaths,
)
from sealagent.protocol import Assignment
from sealagent.task_kinds import StorageJob
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import SealTaskType, TaskType

PATHS = SectorPaths("/p/unsealed/s-t01000-3", "/p/sealed/s-t01000-3", "/p/cache/s-t01000-3")


def wire(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task_id": "t-17", "attempt": 2, "task_type": "seal/v0/precommit/1",
        "sector": {"miner": 1000, "number": 3}, "proof": 5, "priority": 1024,
        "params": {"sector": {"miner": 1000, "number": 3, "proof": "StackedDrg2KiBV1_1"},
                   "ticket": "ab" * 32,
                   "pieces": [{"size": 2048, "cid": "baga6ea4seaqexample"}]},
        "fetch": [{"file_type": "unsealed", "url": "http://h:1/remote/unsealed/s-t01000-3"}],
        "threads": 4, "gpu": 0.5}
    data.update(changes)
    return data


def test_parse_and_roundtrip() -> None:
    a = Assignment.from_json(wire())
    assert a.key == "t-17.2"
    assert a.phase is Phase.PRECOMMIT1
    assert a.sector == SectorID(1000, 3)
    assert a.proof is RegisteredSealProof.StackedDrg2KiBV1_1
    assert a.seal_task_type == SealTaskType(a.proof, TaskType.PRECOMMIT1)
    assert a.fetch[0].file_type is FileType.UNSEALED
    assert (a.threads, a.gpu, a.priority) == (4, 0.5, 1024)
    assert a.phase.reads == FileType.UNSEALED and a.fetched == FileType.UNSEALED
    assert a.phase.creates == FileType.SEALED | FileType.CACHE
    assert not a.skips_preparing
    assert Assignment.from_json(a.to_json()) == a


def test_request_gets_sector_and_local_paths() -> None:
    request = Assignment.from_json(wire()).request(PATHS)
    assert isinstance(request, PreCommit1Request)
    assert request.paths == PATHS
    assert request.sector.number == 3 and request.ticket == "ab" * 32


def test_request_without_paths_for_commit2() -> None:
    a = Assignment.from_json(wire(task_type="seal/v0/commit/2", params={"c1_output": "{}"},
                                  fetch=[]))
    assert a.skips_preparing and a.phase.reads == a.phase.creates == a.fetched == FileType(0)
    request = a.request(PATHS)
    assert isinstance(request, Commit2Request) and request.c1_output == "{}"


def test_a_move_to_storage_travels_as_its_task_type_and_has_no_request() -> None:
    a = Assignment.from_json(wire(task_type="seal/v0/fetch", params={"allow_to": None},
                                  fetch=[]))
    assert a.phase is StorageJob.MOVE_STORAGE and a.to_json()["task_type"] == "seal/v0/fetch"
    assert (a.phase.label, a.phase.short) == ("MoveStorage", "GET")
    assert a.phase.reads == FileType.SEALED | FileType.CACHE and not a.skips_preparing
    with pytest.raises(InvalidInputError, match="MoveStorage runs no phase"):
        a.request(PATHS)


def test_request_with_bad_params_is_a_clear_error() -> None:
    a = Assignment.from_json(wire(params={"ticket": "zz"}))
    with pytest.raises(InvalidInputError):
        a.request(PATHS)


@pytest.mark.parametrize(("changes", "words"), [
    ({"task_type": "seal/v0/replicaupdate"}, "replicaupdate"),
    ({"task_id": ""}, "task_id"),
    ({"attempt": -1}, "attempt"),
    ({"proof": 99}, "99"),
    ({"sector": [1, 2]}, "sector"),
    ({"gpu": "lots"}, "gpu"),
    ({"fetch": [{"file_type": "nope", "url": "u"}]}, "nope"),
    ({"params": []}, "params"),
    ({"priority": True}, "priority"),
])
def test_malformed_assignments(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Assignment.from_json(wire(**changes))
    assert words in str(info.value)


def test_not_an_object() -> None:
    with pytest.raises(InvalidInputError):
        Assignment.from_json(["t-1"])


def test_fields_a_newer_manager_adds_are_skipped() -> None:
    assert Assignment.from_json(wire(deadline=60, fetch=[
        {"file_type": "unsealed", "url": "u", "checksum": "x"}])).fetch[0].url == "u"


def test_wire_form_of_the_typed_fields() -> None:
    data = Assignment.from_json(wire()).to_json()
    assert (data["task_type"], data["proof"], data["sector"]) == (
        "seal/v0/precommit/1", 5, {"miner": 1000, "number": 3})
    assert data["fetch"] == [{"file_type": "unsealed",
                              "url": "http://h:1/remote/unsealed/s-t01000-3"}]
    assert json.loads(json.dumps(data)) == wire()
