"""The whole 2 KiB seal against every intermediate value of the derived end-to-end vector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sealagent.proofs import (
    PieceInfo,
    RegisteredSealProof,
    SealCommitPhase1Output,
    add_piece,
    check_seal_commit_phase1,
    generate_replica_id,
    seal_commit_phase1,
    seal_pre_commit_phase1,
    seal_pre_commit_phase2,
    sealed_commitment_to_cid,
    unseal_range,
    unsealed_commitment_to_cid,
)
from sealagent.proofs.cache_files import layer_path
from sealagent.proofs.merkle import POSEIDON_HASHER, tree_rows

PROOF = RegisteredSealProof.StackedDrg2KiBV1_1
NAME = "derived_end_to_end_2KiB_v1_1_pattern"


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


def _hexes(nodes: Any) -> list[str]:
    return [bytes(n).hex() for n in np.asarray(nodes).reshape(-1, 32)]


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory,
           vectors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Seal the vector's sector once; hand out the paths and every phase's output."""
    vector = vectors[NAME]
    inp = vector["inputs"]
    root = tmp_path_factory.mktemp("kat-seal")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIL_PROOFS_PARENT_CACHE",
                  str(tmp_path_factory.getbasetemp() / "filecoin-parents"))
        cache = root / "cache"
        cache.mkdir()
        data = bytes(i % 251 for i in range(2032))
        ap = add_piece(PROOF, data, root / "unsealed", len(data))
        args = (_h(inp["prover_id_hex"]), inp["sector_id"], _h(inp["ticket_hex"]))
        ids = dict(zip(("prover_id", "sector_id", "ticket"), args, strict=True))
        pc1 = seal_pre_commit_phase1(PROOF, cache, root / "unsealed", root / "sealed", **ids,
                                     pieces=[ap.piece])
        pc2 = seal_pre_commit_phase2(pc1, cache, root / "sealed")
        c1 = seal_commit_phase1(PROOF, cache, root / "sealed", **ids, seed=_h(inp["seed_hex"]),
                                pieces=[ap.piece])
    return {"root": root, "cache": cache, "data": data, "piece": ap.piece, "pc1": pc1,
            "pc2": pc2, "c1": c1, "vector": vector, "args": args}


def test_staged_sector_and_comm_d(sealed: dict[str, Any]) -> None:
    exp = sealed["vector"]["expected"]
    staged = (sealed["root"] / "unsealed").read_bytes()
    assert staged.hex() == sealed["vector"]["inputs"]["staged_sector_hex"]
    piece: PieceInfo = sealed["piece"]
    assert piece.commitment.hex() == exp["comm_d"]
    assert sealed["pc1"].comm_d.hex() == exp["comm_d"]
    assert unsealed_commitment_to_cid(sealed["pc2"].comm_d) == exp["unsealed_cid"]


def test_replica_id(sealed: dict[str, Any]) -> None:
    exp = sealed["vector"]["expected"]
    assert sealed["pc1"].replica_id.hex() == exp["replica_id"]
    prover_id, sector_id, ticket = sealed["args"]
    rid = generate_replica_id(prover_id, sector_id, ticket, _h(exp["comm_d"]), PROOF.porep_id)
    assert rid.hex() == exp["replica_id"]


def test_labels(sealed: dict[str, Any]) -> None:
    exp = sealed["vector"]["expected"]
    for layer in (1, 2):
        raw = layer_path(sealed["cache"], layer).read_bytes()
        assert _hexes(np.frombuffer(raw, dtype=np.uint8)) == exp[f"labels_layer{layer}"]


def test_tree_c(sealed: dict[str, Any]) -> None:
    exp = sealed["vector"]["expected"]
    tree_c = np.frombuffer((sealed["cache"] / "sc-02-data-tree-c.dat").read_bytes(),
                           dtype=np.uint8).reshape(-1, 32)
    assert tree_c.shape[0] == 64 + 8 + 1
    assert _hexes(tree_c[:64]) == exp["column_hashes"]
    assert _hexes(tree_c[64:72]) == exp["tree_c_level1"]
    assert bytes(tree_c[72]).hex() == exp["comm_c"]


def test_replica_and_tree_r_last(sealed: dict[str, Any]) -> None:
    exp = sealed["vector"]["expected"]
    replica = (sealed["root"] / "sealed").read_bytes()
    assert replica.hex() == exp["replica_hex"]
    rows = tree_rows(np.frombuffer(replica, dtype=np.uint8).reshape(-1, 32), 8,
                     POSEIDON_HASHER)
    assert _hexes(rows[1]) == exp["tree_r_last_level1"]
    assert bytes(rows[2][0]).hex() == exp["comm_r_last"]
    assert (sealed["cache"] / "sc-02-data-tree-r-last.dat").read_bytes().hex() == exp[
        "comm_r_last"
    ]


def test_commitments_and_p_aux(sealed: dict[str, Any]) -> None:
    exp = sealed["vector"]["expected"]
    assert sealed["pc2"].comm_r.hex() == exp["comm_r"]
    assert sealed_commitment_to_cid(sealed["pc2"].comm_r) == exp["sealed_cid"]
    assert (sealed["cache"] / "p_aux").read_bytes().hex() == exp["p_aux_hex"]


def test_challenges_parents_and_public_inputs(sealed: dict[str, Any]) -> None:
    exp = sealed["vector"]["expected"]
    c1: SealCommitPhase1Output = sealed["c1"]
    (partition,) = c1.vanilla_proofs
    challenges = [p.c_x.column.index for p in partition]
    assert challenges == exp["interactive_challenges_partition0"]
    public: list[Any] = [c1.replica_id.hex(), c1.comm_d.hex(), c1.comm_r.hex()]
    for challenge, proof in zip(challenges, partition, strict=True):
        parents = [col.column.index for col in proof.drg_parents + proof.exp_parents]
        assert parents == exp["parents_of_challenges"][str(challenge)]
        assert [col.inclusion_proof.leaf_index()
                for col in proof.drg_parents + proof.exp_parents] == parents
        public += [proof.comm_d_proofs.leaf_index(), *parents, proof.encoding_proof.node,
                   proof.comm_r_last_proof.leaf_index(), proof.c_x.inclusion_proof.leaf_index()]
    assert public == exp["snark_public_inputs"]


def test_commit_output_verifies_and_unseals(sealed: dict[str, Any], tmp_path: Path) -> None:
    c1 = SealCommitPhase1Output.from_json(sealed["c1"].to_json())
    assert c1 == sealed["c1"]
    prover_id, sector_id, ticket = sealed["args"]
    check_seal_commit_phase1(c1, prover_id, sector_id)
    out = tmp_path / "piece"
    written = unseal_range(PROOF, sealed["cache"], sealed["root"] / "sealed", out,
                           prover_id=prover_id, sector_id=sector_id,
                           comm_d=sealed["pc1"].comm_d, ticket=ticket, offset=0, num_bytes=2032)
    assert written == 2032
    assert out.read_bytes() == sealed["data"]
