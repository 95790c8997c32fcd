"""The stacked-DRG PoRep circuit: counts asserted by rust-fil-proofs, and a real sector's
witness (satisfied; a flipped label is not)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealagent.errors import InvalidInputError
from sealagent.proofs import RegisteredSealProof, SealCommitPhase1Output
from sealagent.snark.cs import ConstraintSystem
from sealagent.snark.porep import StackedCircuitParams, circuit_info, synthesize_stacked
from sealagent.snark.seal import seal_public_inputs, synthesize_partition, verify_seal
from sealagent.snark.stacked import circuit_params, partition_witness
from tests.unit.test_seal import PROVER_ID, SEED, TICKET, seal_sector

V1_1 = RegisteredSealProof.StackedDrg2KiBV1_1


def test_circuit_parameters_of_registered_proofs() -> None:
    p = circuit_params(V1_1)
    assert (p.nodes, p.layers, p.challenges, p.tree_arities()) == (64, 2, 2, [8, 8])
    assert p.data_arities() == [2] * 6
    p32 = circuit_params(RegisteredSealProof.StackedDrg32GiBV1_1)
    assert (p32.layers, p32.challenges, p32.tree_arities()) == (11, 18, [8] * 9 + [8])
    p64 = circuit_params(RegisteredSealProof.StackedDrg64GiBV1_1)
    assert p64.tree_arities() == [8] * 9 + [8, 2]


@pytest.mark.parametrize("kwargs", [
    {"nodes": 12, "layers": 2, "challenges": 1},
    {"nodes": 8, "layers": 0, "challenges": 1},
    {"nodes": 8, "layers": 2, "challenges": 1, "base_arity": 3},
    {"nodes": 16, "layers": 2, "challenges": 1, "base_arity": 8},
    {"nodes": 64, "layers": 2, "challenges": 1, "sub_arity": 0, "top_arity": 2},
])
def test_impossible_circuit_shapes_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidInputError):
        StackedCircuitParams(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize(("nodes", "tree", "constraints"), [
    (8, (8, 0, 0), 1_199_620),
    (8, (2, 0, 0), 1_206_212),
    (32, (8, 4, 0), 1_296_576),
    (64, (8, 4, 2), 1_346_982),
])
def test_stacked_circuit_counts_match_rust_fil_proofs(
        nodes: int, tree: tuple[int, int, int], constraints: int) -> None:
    info = circuit_info(StackedCircuitParams(nodes, 2, 1, *tree))
    assert (info.constraints, info.public_inputs) == (constraints, 22)


@pytest.mark.slow
def test_circuit_info_equals_the_full_blank_circuit() -> None:
    params = StackedCircuitParams(8, 2, 2, 8)
    cs = ConstraintSystem(witness=False)
    synthesize_stacked(cs, params)
    info = circuit_info(params)
    assert (info.constraints, info.public_inputs) == (cs.num_constraints, cs.num_inputs)
    assert info.public_inputs == 4 + 2 * 18


@pytest.fixture(scope="module")
def c1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SealCommitPhase1Output]:
    """One 2 KiB V1_1 sector through Commit1."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIL_PROOFS_PARENT_CACHE",
                  str(tmp_path_factory.getbasetemp() / "filecoin-parents"))
        out = seal_sector(V1_1, tmp_path_factory.mktemp("snark")).c1
        assert out is not None
        yield out


@pytest.mark.slow
def test_real_sector_satisfies_the_2kib_circuit(c1: SealCommitPhase1Output) -> None:
    cs = synthesize_partition(c1, 0)
    assert (cs.num_constraints, cs.num_inputs) == (2_687_921, 40)
    assert cs.first_unsatisfied() is None
    assert cs.input_values[1:] == seal_public_inputs(V1_1, c1.comm_r, c1.comm_d,
                                                     c1.replica_id, c1.seed, 0)


@pytest.mark.slow
def test_a_flipped_label_does_not_satisfy_the_2kib_circuit(c1: SealCommitPhase1Output) -> None:
    witness = partition_witness(c1.vanilla_proofs[0], c1.replica_id, c1.comm_d, c1.comm_r)
    first = witness.challenges[0]
    parent = first.drg_parents[2]
    flipped = dataclasses.replace(parent, rows=(parent.rows[0] ^ 1, *parent.rows[1:]))
    bad = dataclasses.replace(first, drg_parents=(*first.drg_parents[:2], flipped,
                                                  *first.drg_parents[3:]))
    cs = ConstraintSystem(witness=True)
    synthesize_stacked(cs, circuit_params(V1_1),
                       dataclasses.replace(witness, challenges=(bad, *witness.challenges[1:])))
    assert cs.first_unsatisfied() is not None


def test_public_inputs_follow_the_statement(c1: SealCommitPhase1Output) -> None:
    inputs = seal_public_inputs(V1_1, c1.comm_r, c1.comm_d, c1.replica_id, c1.seed, 0)
    assert len(inputs) == 39
    challenge = c1.vanilla_proofs[0][0].labeling_proofs[0].node
    parents = [p.column.index for p in (*c1.vanilla_proofs[0][0].drg_parents,
                                        *c1.vanilla_proofs[0][0].exp_parents)]
    assert inputs[3:21] == [challenge, *parents, challenge, challenge, challenge]


def test_verify_seal_needs_parameters_and_well_sized_proofs(
        c1: SealCommitPhase1Output, tmp_path: Path) -> None:
    args = (V1_1, c1.comm_r, c1.comm_d, PROVER_ID, 7, TICKET, SEED)
    assert not verify_seal(*args, bytes(191), cache_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="params generate"):
        verify_seal(*args, bytes(192), cache_dir=tmp_path)


def test_the_proofs_api_exports_commit2_and_verify_seal() -> None:
    import sealagent.proofs
    import sealagent.snark.seal

    assert sealagent.proofs.verify_seal is sealagent.snark.seal.verify_seal
    assert sealagent.proofs.seal_commit_phase2 is sealagent.snark.seal.seal_commit_phase2
    with pytest.raises(AttributeError):
        sealagent.proofs.no_such_function  # noqa: B018
