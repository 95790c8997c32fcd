"""The plugin contract: hook specs, phases and the messages they carry."""

from __future__ import annotations

import inspect
import json
import typing
from typing import Any

import pluggy
import pytest

from sealagent import PROJECT_NAME, hookspecs
from sealagent.codec import Message
from sealagent.errors import InvalidInputError, UnknownProofError
from sealagent.phases import (
    AddPieceRequest,
    AddPieceResult,
    BackendInfo,
    Commit1Request,
    Commit1Result,
    Commit2Request,
    Commit2Result,
    FinalizeRequest,
    FinalizeResult,
    Phase,
    PieceRef,
    PreCommit1Request,
    PreCommit1Result,
    PreCommit2Request,
    PreCommit2Result,
    SectorPaths,
    SectorRef,
    UnsealRequest,
    UnsealResult,
)
from sealagent.vocab.sectors import FileType
from sealagent.vocab.tasks import TaskType

HOOKS = [
    (name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("sealagent_")
]

SECTOR = SectorRef(miner=1000, number=7, proof="StackedDrg2KiBV1_1")
PATHS = SectorPaths(unsealed="/s/unsealed/s-t01000-7", sealed="/s/sealed/s-t01000-7",
                    cache="/s/cache/s-t01000-7")
PIECE = PieceRef(size=2048,
                 cid="baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi")
HEX = "ab" * 32

EXAMPLES: list[Message] = [
    AddPieceRequest(SECTOR, PATHS, 2032, "/data/piece", (127, 254)),
    AddPieceRequest(SECTOR, PATHS, 2032),
    AddPieceResult(PIECE, 0, 2032),
    PreCommit1Request(SECTOR, PATHS, HEX, (PIECE,)),
    PreCommit1Result('{"labels": {}}'),
    PreCommit2Request(SECTOR, PATHS, '{"labels": {}}'),
    PreCommit2Result("baga…", "bagboea4b5abc…"),
    Commit1Request(SECTOR, PATHS, HEX, "cd" * 32, (PIECE,), "baga…", "bagboea…"),
    Commit1Result('{"vanilla_proofs": {}}'),
    Commit2Request(SECTOR, '{"vanilla_proofs": {}}'),
    Commit2Result("00" * 192),
    UnsealRequest(SECTOR, PATHS, HEX, "baga…", 0, 2032, "/tmp/out"),
    UnsealResult(2032),
    FinalizeRequest(SECTOR, PATHS, keep_unsealed=False),
    FinalizeResult(("/s/cache/s-t01000-7/sc-02-data-layer-1.dat",)),
    BackendInfo("gpu", "a GPU backend", "1.0", available=False, reason="no CUDA GPU"),
]


def test_hooks_exist_and_are_prefixed() -> None:
    names = {name for name, _ in HOOKS}
    assert names == {"sealagent_backend_info", "sealagent_warm", "sealagent_parents_builder",
                     *(p.hook_name for p in Phase)}


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[n for n, _ in HOOKS])
def test_hook_is_documented_and_typed(name: str, fn: Any) -> None:
    doc = inspect.getdoc(fn)
    assert doc, f"{name} has no docstring"
    assert ":returns:" in doc, f"{name}: docstring does not say what it returns"
    hints = typing.get_type_hints(fn)
    assert "return" in hints, f"{name} has no return annotation"
    for param in inspect.signature(fn).parameters:
        assert param in hints, f"{name}: parameter {param!r} has no annotation"
        assert f":param {param}:" in doc, f"{name}: parameter {param!r} is not documented"


@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.label)
def test_phase_hook_takes_its_request_and_returns_its_result(phase: Phase) -> None:
    hints = typing.get_type_hints(getattr(hookspecs, phase.hook_name))
    assert hints["request"] is phase.request_type
    assert hints["return"] == phase.result_type | None
    assert phase.request_type.phase is phase
    assert phase.result_type.phase is phase


def test_phase_hooks_are_firstresult_and_info_is_not() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for phase in Phase:
        spec = getattr(pm.hook, phase.hook_name).spec
        assert spec is not None and spec.opts["firstresult"] is True
    info = pm.hook.sealagent_backend_info.spec
    assert info is not None and info.opts["firstresult"] is False


def test_phases_carry_lotus_task_types() -> None:
    assert [p.task_type for p in Phase] == [
        "seal/v0/addpiece", "seal/v0/precommit/1", "seal/v0/precommit/2",
        "seal/v0/commit/1", "seal/v0/commit/2", "seal/v0/unseal", "seal/v0/finalize",
    ]
    assert Phase.PRECOMMIT1.short == "PC1"
    assert Phase.PRECOMMIT1.label == "PreCommit1"
    assert all(p.task_type is TaskType(p.value) and p.short == p.task_type.short
               for p in Phase)


def test_phases_name_the_sector_files_they_read_and_create() -> None:
    sealed = FileType.SEALED | FileType.CACHE
    assert {p: (p.reads, p.creates) for p in Phase} == {
        Phase.ADD_PIECE: (FileType(0), FileType.UNSEALED),
        Phase.PRECOMMIT1: (FileType.UNSEALED, sealed),
        Phase.PRECOMMIT2: (sealed, FileType(0)),
        Phase.COMMIT1: (sealed, FileType(0)),
        Phase.COMMIT2: (FileType(0), FileType(0)),
        Phase.UNSEAL: (sealed, FileType.UNSEALED),
        Phase.FINALIZE: (FileType.CACHE, FileType(0)),
    }


@pytest.mark.parametrize("text", ["pc1", "PreCommit1", "PRECOMMIT1", "seal/v0/precommit/1",
                                  " precommit1 "])
def test_phase_parse_accepts_every_name(text: str) -> None:
    assert Phase.parse(text) is Phase.PRECOMMIT1


def test_phase_parse_rejects_unknown_names() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown phase 'pc3'.*PreCommit1"):
        Phase.parse("pc3")


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_messages_round_trip_through_json_text(message: Message) -> None:
    text = json.dumps(message.to_json())
    again = type(message).from_json(json.loads(text))
    assert again == message
    assert again.to_json() == message.to_json()


def test_message_json_is_plain_data() -> None:
    data = AddPieceRequest(SECTOR, PATHS, 2032, "/data/piece", (127,)).to_json()
    assert data == {
        "sector": {"miner": 1000, "number": 7, "proof": "StackedDrg2KiBV1_1"},
        "paths": {"unsealed": PATHS.unsealed, "sealed": PATHS.sealed, "cache": PATHS.cache},
        "piece_size": 2032, "piece_file": "/data/piece", "existing_piece_sizes": [127],
    }


def test_from_json_fills_defaults() -> None:
    data = AddPieceRequest(SECTOR, PATHS, 2032).to_json()
    del data["existing_piece_sizes"], data["piece_file"]
    assert AddPieceRequest.from_json(data) == AddPieceRequest(SECTOR, PATHS, 2032)


@pytest.mark.parametrize(("change", "error"), [
    ({"piece_size": "2032"}, "piece_size: expected int, got str"),
    ({"piece_size": True}, "piece_size: expected int, got a boolean"),
    ({"existing_piece_sizes": 127}, "expected a list"),
    ({"surprise": 1}, "unknown field"),
    ({"sector": None}, "SectorRef: expected a JSON object"),
    ({"piece_file": 3}, "not a valid"),
])
def test_from_json_rejects_bad_fields(change: dict[str, Any], error: str) -> None:
    data = AddPieceRequest(SECTOR, PATHS, 2032).to_json() | change
    with pytest.raises(InvalidInputError, match=error):
        AddPieceRequest.from_json(data)


def test_from_json_reports_missing_fields() -> None:
    data = PreCommit1Request(SECTOR, PATHS, HEX, ()).to_json()
    del data["ticket"]
    with pytest.raises(InvalidInputError, match="missing field 'ticket'"):
        PreCommit1Request.from_json(data)


@pytest.mark.parametrize("ticket", ["ab" * 31, "AB" * 32, "zz" * 32])
def test_requests_validate_hex(ticket: str) -> None:
    with pytest.raises(InvalidInputError, match="ticket"):
        PreCommit1Request(SECTOR, PATHS, ticket, ())


def test_sector_ref_resolves_proof_and_names_files() -> None:
    sector = SectorRef(miner=1000, number=1, proof="5")
    assert sector.proof == "StackedDrg2KiBV1_1"
    assert sector.file_name == "s-t01000-1"
    assert sector.prover_id == bytes.fromhex("e807") + bytes(30)
    assert SectorRef(miner=5, number=0, proof="StackedDrg2KiBV1").prover_id[:2] == b"\x05\0"
    with pytest.raises(UnknownProofError):
        SectorRef(miner=1000, number=1, proof="StackedDrg3KiBV1")
    with pytest.raises(InvalidInputError, match="negative"):
        SectorRef(miner=1000, number=-1, proof="StackedDrg2KiBV1")


@pytest.mark.parametrize("size", [0, 127, 1000, 2047])
def test_piece_ref_needs_power_of_two_padded_size(size: int) -> None:
    with pytest.raises(InvalidInputError, match="power of two"):
        PieceRef(size=size, cid=PIECE.cid)
