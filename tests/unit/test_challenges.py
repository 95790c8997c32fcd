"""PoRep challenge derivation (docs/porep.md §9.1–§9.3)."""

from __future__ import annotations

from typing import Any

import pytest

from sealagent.errors import InvalidInputError, UnknownProofError
from sealagent.proofs.challenges import (
    interactive_challenges,
    non_interactive_challenges,
    partition_challenges,
    synthetic_challenge_count,
    synthetic_challenges,
    synthetic_porep_challenges,
    synthetic_selection_indexes,
)
from sealagent.vocab.registry import RegisteredSealProof

Vectors = dict[str, dict[str, Any]]
RID = bytes(range(32))
SEED = bytes([3] * 32)
COMM_R = bytes([4] * 32)


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_interactive_32gib_shape(vectors: Vectors) -> None:
    v = vectors["derived_interactive_challenges_32GiB_shape"]
    inp, exp = v["inputs"], v["expected"]
    for k in inp["partitions"]:
        got = interactive_challenges(inp["sector_nodes"], _h(inp["replica_id_hex"]),
                                     _h(inp["seed_hex"]), k, inp["challenges_per_partition"])
        assert got == exp[f"partition{k}"]


def test_interactive_2kib_end_to_end_vector(vectors: Vectors) -> None:
    v = vectors["derived_end_to_end_2KiB_v1_1_pattern"]
    got = partition_challenges(RegisteredSealProof.StackedDrg2KiBV1_1,
                               _h(v["expected"]["replica_id"]), 0,
                               seed=_h(v["inputs"]["seed_hex"]), comm_r=bytes(32))
    assert got == v["expected"]["interactive_challenges_partition0"]


def test_non_interactive_2kib(vectors: Vectors) -> None:
    v = vectors["derived_ni_challenges_2KiB"]
    inp, exp = v["inputs"], v["expected"]
    for k in inp["k"]:
        got = non_interactive_challenges(inp["sector_nodes"], _h(inp["replica_id_hex"]),
                                         _h(inp["comm_r_hex"]), k,
                                         inp["challenges_per_partition"])
        assert got == exp[f"k{k}"]
        proof = RegisteredSealProof.StackedDrg2KiBV1_2_Feat_NonInteractivePoRep
        assert partition_challenges(proof, _h(inp["replica_id_hex"]), k, seed=SEED,
                                    comm_r=_h(inp["comm_r_hex"])) == exp[f"k{k}"]


def test_synthetic_hardcoded(vectors: Vectors) -> None:
    v = vectors["synthetic_challenges_hardcoded"]
    inp, exp = v["inputs"], v["expected"]
    nodes, count = inp["sector_nodes"], inp["num_synth_challenges"]
    rid, comm_r = (55).to_bytes(32, "little"), (101).to_bytes(32, "little")
    rand = _h(inp["rand_hex"])
    assert synthetic_challenges(nodes, rid, comm_r, 0, count) == exp["synth_challenges"]
    porep = inp["num_porep_challenges"]
    assert synthetic_selection_indexes(count, rid, rand, 0, porep) == exp["porep_selection_indexes"]
    assert synthetic_porep_challenges(nodes, rid, comm_r, rand, k=0,
                                      challenges_per_partition=porep,
                                      num_synth_challenges=count) == exp[
        "porep_challenges"
    ]


def test_synthetic_seek_matches_whole_stream() -> None:
    whole = synthetic_challenges(1024, RID, COMM_R, 0, 40)
    assert synthetic_challenges(1024, RID, COMM_R, 17, 5) == whole[17:22]
    assert synthetic_challenge_count(64) == 64
    assert synthetic_challenge_count(1 << 30) == 1 << 18
    assert len(synthetic_challenges(64, RID, COMM_R)) == 64


def test_partitions_are_slices_of_one_long_partition() -> None:
    one = interactive_challenges(1 << 20, RID, SEED, 0, 36)
    many = [c for k in range(4) for c in interactive_challenges(1 << 20, RID, SEED, k, 9)]
    assert one == many
    sel_one = synthetic_selection_indexes(1000, RID, SEED, 0, 36)
    sel_many = [i for k in range(4) for i in synthetic_selection_indexes(1000, RID, SEED, k, 9)]
    assert sel_one == sel_many


def test_challenges_never_zero_and_in_range() -> None:
    got = interactive_challenges(3, RID, SEED, 0, 200)
    assert set(got) <= {1, 2}
    assert all(1 <= c < 64 for c in non_interactive_challenges(64, RID, COMM_R, 3, 50))


def test_synthetic_proofs_select_by_seed() -> None:
    proof = RegisteredSealProof.StackedDrg2KiBV1_1_Feat_SyntheticPoRep
    a = partition_challenges(proof, RID, 0, seed=SEED, comm_r=COMM_R)
    synth_set = set(synthetic_challenges(64, RID, COMM_R))
    assert set(a) <= synth_set
    other_seed = partition_challenges(proof, RID, 0, seed=bytes(32), comm_r=COMM_R)
    other_comm_r = partition_challenges(proof, RID, 0, seed=SEED, comm_r=bytes(32))
    assert a != other_seed
    assert a != other_comm_r


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"replica_id": b"short"}, InvalidInputError),
        ({"seed": bytes(33)}, InvalidInputError),
        ({"k": 1}, InvalidInputError),
        ({"k": -1}, InvalidInputError),
        ({"registered_proof": 99}, UnknownProofError),
    ],
)
def test_bad_inputs(kwargs: dict[str, Any], error: type[Exception]) -> None:
    args: dict[str, Any] = {"registered_proof": RegisteredSealProof.StackedDrg2KiBV1_1,
                            "replica_id": RID, "k": 0, "seed": SEED, "comm_r": COMM_R}
    args.update(kwargs)
    proof, rid, k = args.pop("registered_proof"), args.pop("replica_id"), args.pop("k")
    with pytest.raises(error):
        partition_challenges(proof, rid, k, **args)


def test_bad_low_level_inputs() -> None:
    with pytest.raises(InvalidInputError):
        interactive_challenges(1, RID, SEED, 0, 2)
    with pytest.raises(InvalidInputError):
        interactive_challenges(64, RID, SEED, 0, 0)
    with pytest.raises(InvalidInputError):
        interactive_challenges(64, RID, SEED, 256, 2)
    with pytest.raises(InvalidInputError):
        synthetic_selection_indexes(0, RID, SEED, 0, 2)
    with pytest.raises(InvalidInputError):
        synthetic_challenges(64, RID, COMM_R, -1, 2)
