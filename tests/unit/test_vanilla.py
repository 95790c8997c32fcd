"""Commit1: vanilla proofs, their JSON form and their verification (docs/porep.md §9.4–§9.6)."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealagent.errors import (
    CommitmentMismatchError,
    CorruptDataError,
    InvalidInputError,
    ProofsError,
    VerificationError,
)
from sealagent.proofs import (
    RegisteredSealProof,
    SealCommitPhase1Output,
    check_seal_commit_phase1,
    partition_challenges,
    seal_commit_phase1,
    synthetic_challenges,
    unseal_range,
    verify_seal_commit_phase1,
)
from sealagent.proofs.cache_files import layer_path
from sealagent.proofs.field import R
from tests.unit.test_seal import PROVER_ID, SEED, TICKET, Sealed, seal_sector

V1_1 = RegisteredSealProof.StackedDrg2KiBV1_1
Json = dict[str, Any]


@pytest.fixture(scope="module")
def v1_1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sealed]:
    """One V1_1 sector through C1, shared by the read-only tests of this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIL_PROOFS_PARENT_CACHE",
                  str(tmp_path_factory.getbasetemp() / "filecoin-parents"))
        yield seal_sector(V1_1, tmp_path_factory.mktemp("c1"))


def _c1(s: Sealed) -> SealCommitPhase1Output:
    assert s.c1 is not None
    return s.c1


@pytest.mark.parametrize(
    "proof",
    [
        RegisteredSealProof.StackedDrg2KiBV1_1,
        RegisteredSealProof.StackedDrg2KiBV1,
        RegisteredSealProof.StackedDrg2KiBV1_1_Feat_SyntheticPoRep,
        RegisteredSealProof.StackedDrg2KiBV1_2_Feat_NonInteractivePoRep,
    ],
)
def test_round_trip(proof: RegisteredSealProof, tmp_path: Path) -> None:
    s = seal_sector(proof, tmp_path, sector_id=42)
    c1 = SealCommitPhase1Output.from_json(json.dumps(_c1(s).to_json()))
    assert c1 == s.c1
    assert len(c1.vanilla_proofs) == proof.partitions
    assert all(len(p) == proof.challenges_per_partition for p in c1.vanilla_proofs)
    check_seal_commit_phase1(c1, PROVER_ID, 42)
    assert verify_seal_commit_phase1(c1)
    assert not verify_seal_commit_phase1(c1, PROVER_ID, 43)
    out = io.BytesIO()
    unseal_range(proof, s.cache, s.sealed, out, prover_id=PROVER_ID, sector_id=42,
                 comm_d=s.pc2.comm_d, ticket=TICKET, offset=0, num_bytes=2032)
    assert out.getvalue() == s.data[0] + s.data[1] + bytes(508)


def test_synthetic_challenges_come_from_the_synthetic_set(tmp_path: Path) -> None:
    proof = RegisteredSealProof.StackedDrg2KiBV1_1_Feat_SyntheticPoRep
    s = seal_sector(proof, tmp_path)
    c1 = _c1(s)
    challenges = [p.c_x.column.index for p in c1.vanilla_proofs[0]]
    assert challenges == partition_challenges(proof, c1.replica_id, 0, seed=SEED,
                                              comm_r=c1.comm_r)
    assert set(challenges) <= set(synthetic_challenges(64, c1.replica_id, c1.comm_r))


def test_json_shape(v1_1: Sealed) -> None:
    obj = _c1(v1_1).to_json()
    assert set(obj) == {"registered_proof", "vanilla_proofs", "comm_r", "comm_d",
                        "replica_id", "seed", "ticket"}
    assert obj["registered_proof"] == "StackedDrg2KiBV1_1"
    (partition,) = obj["vanilla_proofs"]["StackedDrg2KiBV1"]
    proof = partition[0]
    assert set(proof) == {"comm_d_proofs", "comm_r_last_proof", "replica_column_proofs",
                          "labeling_proofs", "encoding_proof"}
    assert len(proof["comm_d_proofs"]["data"]["Single"]["path"]["path"]) == 6
    column = proof["replica_column_proofs"]["c_x"]["column"]
    assert set(column) == {"index", "rows", "_h"}
    assert len(proof["replica_column_proofs"]["drg_parents"]) == 6
    assert len(proof["replica_column_proofs"]["exp_parents"]) == 8
    assert [p["layer_index"] for p in proof["labeling_proofs"]] == [1, 2]
    assert len(proof["labeling_proofs"][0]["parents"]) == 37
    assert proof["encoding_proof"] == proof["labeling_proofs"][1]
    assert obj["seed"] == list(SEED)
    assert obj["ticket"] == list(TICKET)


def _flip_domain(value: list[int], byte: int = 0, bit: int = 0) -> None:
    value[byte] ^= 1 << bit


def _proof(obj: Json, i: int = 0) -> Json:
    result: Json = obj["vanilla_proofs"]["StackedDrg2KiBV1"][0][i]
    return result


def _single(merkle: Json) -> Json:
    result: Json = merkle["data"]["Single"]
    return result


def _col(obj: Json, which: str, i: int | None = None, proof: int = 0) -> Any:
    rcp = _proof(obj, proof)["replica_column_proofs"]
    return rcp[which] if i is None else rcp[which][i]


TAMPERINGS: dict[str, Any] = {
    "comm_r": lambda o: _flip_domain(o["comm_r"]),
    "comm_r top bit": lambda o: _flip_domain(o["comm_r"], 31, 6),
    "comm_d": lambda o: _flip_domain(o["comm_d"], 9),
    "replica_id": lambda o: _flip_domain(o["replica_id"], 17),
    "seed": lambda o: _flip_domain(o["seed"], 31),
    "registered_proof": lambda o: o.update(registered_proof="StackedDrg2KiBV1_1_Feat_"
                                                            "SyntheticPoRep"),
    "comm_d root": lambda o: _flip_domain(_single(_proof(o)["comm_d_proofs"])["root"]),
    "comm_d leaf": lambda o: _flip_domain(_single(_proof(o)["comm_d_proofs"])["leaf"], 2),
    "comm_d path hash": lambda o: _flip_domain(
        _single(_proof(o)["comm_d_proofs"])["path"]["path"][3]["hashes"][0], 5),
    "comm_d path index": lambda o: _single(_proof(o)["comm_d_proofs"])["path"]["path"][0]
    .update(index=1 - _single(_proof(o)["comm_d_proofs"])["path"]["path"][0]["index"]),
    "comm_r_last root": lambda o: _flip_domain(_single(_proof(o)["comm_r_last_proof"])["root"]),
    "comm_r_last leaf": lambda o: _flip_domain(_single(_proof(o)["comm_r_last_proof"])["leaf"]),
    "comm_r_last path hash": lambda o: _flip_domain(
        _single(_proof(o)["comm_r_last_proof"])["path"]["path"][1]["hashes"][6]),
    "comm_r_last path index": lambda o: _single(_proof(o)["comm_r_last_proof"])["path"]
    ["path"][1].update(index=7),
    "c_x index": lambda o: _col(o, "c_x")["column"].update(index=3),
    "c_x row 1": lambda o: _flip_domain(_col(o, "c_x")["column"]["rows"][0]),
    "c_x row 2": lambda o: _flip_domain(_col(o, "c_x")["column"]["rows"][1], 30),
    "c_x extra row": lambda o: _col(o, "c_x")["column"]["rows"].append([0] * 32),
    "c_x root": lambda o: _flip_domain(_single(_col(o, "c_x")["inclusion_proof"])["root"]),
    "c_x leaf": lambda o: _flip_domain(_single(_col(o, "c_x")["inclusion_proof"])["leaf"]),
    "c_x path hash": lambda o: _flip_domain(
        _single(_col(o, "c_x")["inclusion_proof"])["path"]["path"][0]["hashes"][2]),
    "drg parent row": lambda o: _flip_domain(_col(o, "drg_parents", 2)["column"]["rows"][1]),
    "drg parent index": lambda o: _col(o, "drg_parents", 4)["column"].update(index=0),
    "drg parent path": lambda o: _flip_domain(
        _single(_col(o, "drg_parents", 5)["inclusion_proof"])["path"]["path"][1]["hashes"][0]),
    "drg parent dropped": lambda o: _col(o, "drg_parents").pop(),
    "exp parent row": lambda o: _flip_domain(_col(o, "exp_parents", 7)["column"]["rows"][0]),
    "exp parent leaf": lambda o: _flip_domain(
        _single(_col(o, "exp_parents", 0)["inclusion_proof"])["leaf"]),
    "exp parents swapped": lambda o: _col(o, "exp_parents").reverse(),
    "labeling parent": lambda o: _flip_domain(_proof(o)["labeling_proofs"][0]["parents"][5]),
    "labeling repeated parent": lambda o: _flip_domain(
        _proof(o)["labeling_proofs"][1]["parents"][36], 1),
    "labeling layer": lambda o: _proof(o)["labeling_proofs"][0].update(layer_index=2),
    "labeling node": lambda o: _proof(o)["labeling_proofs"][1].update(node=1),
    "labeling dropped": lambda o: _proof(o)["labeling_proofs"].pop(),
    "encoding parent": lambda o: _flip_domain(_proof(o)["encoding_proof"]["parents"][13]),
    "encoding layer": lambda o: _proof(o)["encoding_proof"].update(layer_index=1),
    "encoding node": lambda o: _proof(o)["encoding_proof"].update(node=5),
    "second proof c_x row": lambda o: _flip_domain(_col(o, "c_x", proof=1)["column"]["rows"][1]),
    "proofs swapped": lambda o: o["vanilla_proofs"]["StackedDrg2KiBV1"][0].reverse(),
    "proof dropped": lambda o: o["vanilla_proofs"]["StackedDrg2KiBV1"][0].pop(),
    "partition added": lambda o: o["vanilla_proofs"]["StackedDrg2KiBV1"].append([]),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_is_rejected(v1_1: Sealed, name: str) -> None:
    obj = copy.deepcopy(_c1(v1_1).to_json())
    TAMPERINGS[name](obj)
    try:
        c1 = SealCommitPhase1Output.from_json(json.dumps(obj))
    except InvalidInputError:
        return
    assert not verify_seal_commit_phase1(c1)
    with pytest.raises(VerificationError):
        check_seal_commit_phase1(c1)


def test_ticket_is_bound_through_the_replica_id(v1_1: Sealed) -> None:
    obj = copy.deepcopy(_c1(v1_1).to_json())
    _flip_domain(obj["ticket"], 4)
    c1 = SealCommitPhase1Output.from_json(obj)
    assert verify_seal_commit_phase1(c1)
    with pytest.raises(VerificationError, match="replica_id"):
        check_seal_commit_phase1(c1, PROVER_ID, v1_1.sector_id)
    with pytest.raises(InvalidInputError):
        check_seal_commit_phase1(c1, PROVER_ID)


def test_verifier_says_why(v1_1: Sealed) -> None:
    obj = copy.deepcopy(_c1(v1_1).to_json())
    TAMPERINGS["labeling parent"](obj)
    with pytest.raises(VerificationError, match="parent labels differ"):
        check_seal_commit_phase1(SealCommitPhase1Output.from_json(obj))


@pytest.mark.parametrize(("where", "reason"), [
    (lambda o: _col(o, "drg_parents", 1)["column"]["rows"], "parent column 1: .*canonical"),
    (lambda o: _single(_col(o, "exp_parents", 3)["inclusion_proof"])["path"]["path"][0]
     ["hashes"], "parent column 9: the path does not hash"),
])
def test_non_canonical_values_are_rejected(v1_1: Sealed, where: Any, reason: str) -> None:
    obj = copy.deepcopy(_c1(v1_1).to_json())
    where(obj)[0] = list(R.to_bytes(32, "little"))
    c1 = SealCommitPhase1Output.from_json(obj)
    with pytest.raises(VerificationError, match=reason):
        check_seal_commit_phase1(c1)


def test_from_json_rejects_malformed(v1_1: Sealed) -> None:
    good = _c1(v1_1).to_json()
    for bad in ({**good, "vanilla_proofs": {"StackedDrg8MiBV1": []}},
                {**good, "comm_r": [256] * 32},
                {k: v for k, v in good.items() if k != "seed"},
                {**good, "vanilla_proofs": {"StackedDrg2KiBV1": [[{}]]}},
                "[]"):
        with pytest.raises(ProofsError):
            SealCommitPhase1Output.from_json(bad)


def test_c1_input_errors(tmp_path: Path) -> None:
    s = seal_sector(V1_1, tmp_path, commit=False)
    args = (V1_1, s.cache, s.sealed)
    ids: dict[str, Any] = {"prover_id": PROVER_ID, "sector_id": 7, "ticket": TICKET}
    with pytest.raises(CommitmentMismatchError):
        seal_commit_phase1(*args, **ids, seed=SEED, pieces=s.pieces[:1])
    with pytest.raises(InvalidInputError):
        seal_commit_phase1(*args, **ids, seed=b"seed", pieces=s.pieces)
    layer = layer_path(s.cache, 1)
    raw = bytearray(layer.read_bytes())
    for node in range(1, 64):
        raw[32 * node + 3] ^= 0x10
    layer.write_bytes(bytes(raw))
    with pytest.raises(VerificationError, match="invalid vanilla proof generated"):
        seal_commit_phase1(*args, **ids, seed=SEED, pieces=s.pieces)
    (s.cache / "p_aux").unlink()
    with pytest.raises(CorruptDataError):
        seal_commit_phase1(*args, **ids, seed=SEED, pieces=s.pieces)


def _mutations(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every byte-array domain and every integer in a C1 JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _mutations(value, (*path, key))
    elif isinstance(node, list):
        if len(node) == 32 and all(isinstance(b, int) for b in node):
            yield path
        else:
            for i, value in enumerate(node):
                yield from _mutations(value, (*path, i))
    elif isinstance(node, int) and not isinstance(node, bool):
        yield path


@pytest.mark.slow
def test_every_field_is_bound(v1_1: Sealed) -> None:
    """Flip every domain (low bit of byte 0, top bit of byte 31) and bump every integer."""
    good = _c1(v1_1).to_json()
    paths = list(_mutations(good))
    assert len(paths) > 900
    for path in paths:
        for byte, bit in ((0, 0), (31, 7)):
            obj = copy.deepcopy(good)
            parent = obj
            for key in path[:-1]:
                parent = parent[key]
            value = parent[path[-1]]
            if isinstance(value, list):
                value[byte] ^= 1 << bit
            elif byte:
                continue
            else:
                parent[path[-1]] = value + 1
            try:
                c1 = SealCommitPhase1Output.from_json(obj)
            except InvalidInputError:
                continue
            assert not verify_seal_commit_phase1(c1, PROVER_ID, v1_1.sector_id), path
