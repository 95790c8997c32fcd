"""PoSt-style vanilla proofs of a stored 2 KiB sector (docs/porep.md §12).

Fresh challenges are answered from the sealed file and tree-r-last and verified against
CommR; one flipped byte of the sealed file or of a tree-r-last file makes the check fail.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealagent.errors import CorruptDataError, InvalidInputError, VerificationError
from sealagent.proofs.cache_files import PersistentAux
from sealagent.proofs.merkle import tree_r_last_layout
from sealagent.proofs.post import (
    WINDOW_POST_CHALLENGE_COUNT,
    SectorPoStProof,
    fallback_challenges,
    fresh_randomness,
    generate_sector_proof,
    verify_sector_proof,
)
from sealagent.proofs.seal import map_nodes
from sealagent.proofs.vanilla import tree_arities
from sealagent.vocab.registry import RegisteredSealProof
from tests.unit.test_seal import Sealed, seal_sector

V1_1 = RegisteredSealProof.StackedDrg2KiBV1_1
RANDOMNESS = bytes(range(31)) + b"\x3f"


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sealed]:
    """One 2 KiB sector through PC2, copied by the tests that damage it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIL_PROOFS_PARENT_CACHE",
                  str(tmp_path_factory.getbasetemp() / "filecoin-parents"))
        yield seal_sector(V1_1, tmp_path_factory.mktemp("post"), commit=False)


@pytest.fixture
def copy(sealed: Sealed, tmp_path: Path) -> Sealed:
    """A private copy of the sector's files, free to damage."""
    shutil.copytree(sealed.cache, tmp_path / "cache")
    shutil.copy(sealed.sealed, tmp_path / "sealed")
    return dataclasses.replace(sealed, root=tmp_path)


def flip_byte(path: Path, offset: int) -> None:
    """Flip the low bit of one byte of ``path`` in place (the size stays)."""
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 1]))


def _prove(s: Sealed, challenges: list[int]) -> SectorPoStProof:
    return generate_sector_proof(V1_1, s.cache, s.sealed, challenges)


def test_challenges_follow_the_fallback_rule() -> None:
    challenges = fallback_challenges(V1_1, RANDOMNESS, 5)
    assert len(challenges) == WINDOW_POST_CHALLENGE_COUNT
    digest = hashlib.sha256(RANDOMNESS + (5).to_bytes(8, "little") + (3).to_bytes(8, "little"))
    assert challenges[3] == int.from_bytes(digest.digest()[:8], "little") % 64
    assert all(0 <= c < 64 for c in challenges)
    assert fallback_challenges(V1_1, RANDOMNESS, 5) == challenges
    assert fallback_challenges(V1_1, RANDOMNESS, 6) != challenges
    assert fallback_challenges(V1_1, RANDOMNESS, 5, 66)[:10] == challenges
    assert {c for n in range(40) for c in fallback_challenges(V1_1, RANDOMNESS, n)} \
        == set(range(64))  # node 0 too: PoSt challenges any node


def test_challenge_inputs_are_checked() -> None:
    with pytest.raises(InvalidInputError):
        fallback_challenges(V1_1, bytes(31), 1)
    with pytest.raises(InvalidInputError):
        fallback_challenges(V1_1, b"\xff" * 32, 1)  # not a field element
    with pytest.raises(InvalidInputError):
        fallback_challenges(V1_1, RANDOMNESS, -1)
    with pytest.raises(InvalidInputError):
        fallback_challenges(V1_1, RANDOMNESS, 1, 0)
    drawn = {fresh_randomness() for _ in range(4)}
    assert len(drawn) == 4 and all(r[31] < 0x40 for r in drawn)
    for randomness in drawn:
        fallback_challenges(V1_1, randomness, 1)


def test_a_sound_sector_passes(sealed: Sealed) -> None:
    challenges = fallback_challenges(V1_1, fresh_randomness(), sealed.sector_id)
    proof = _prove(sealed, challenges)
    p_aux = PersistentAux.read(sealed.cache)
    assert (proof.comm_c, proof.comm_r_last) == (p_aux.comm_c, p_aux.comm_r_last)
    verify_sector_proof(proof, registered_proof=V1_1, comm_r=sealed.pc2.comm_r,
                        challenges=challenges)
    replica = sealed.sealed.read_bytes()
    for challenge, opening in zip(challenges, proof.inclusion_proofs, strict=True):
        assert opening.leaf == replica[32 * challenge : 32 * challenge + 32]
        assert opening.arities == tree_arities(V1_1)[0]
    again = SectorPoStProof.from_json(json.loads(json.dumps(proof.to_json())))
    assert again == proof
    assert set(proof.to_json()) == {"inclusion_proofs", "comm_c", "comm_r_last"}


def test_the_verifier_rejects_what_does_not_match(sealed: Sealed) -> None:
    challenges = [0, 9, 63]
    proof = _prove(sealed, challenges)
    comm_r = sealed.pc2.comm_r

    def rejected(p: SectorPoStProof, match: str, *, against: list[int] = challenges,
                 with_comm_r: bytes = comm_r) -> None:
        with pytest.raises(VerificationError, match=match):
            verify_sector_proof(p, registered_proof=V1_1, comm_r=with_comm_r,
                                challenges=against)

    rejected(proof, "do not hash to the sector's CommR", with_comm_r=bytes(32))
    rejected(proof, "proves leaf 9, not 10", against=[0, 10, 63])
    rejected(proof, "3 inclusion proofs for 2 challenges", against=[0, 9])
    leaf = bytearray(proof.inclusion_proofs[1].leaf)
    leaf[0] ^= 1
    bad_leaf = dataclasses.replace(proof.inclusion_proofs[1], leaf=bytes(leaf))
    rejected(dataclasses.replace(proof, inclusion_proofs=(
        proof.inclusion_proofs[0], bad_leaf, proof.inclusion_proofs[2])),
        r"challenge 1 \(node 9\): the sealed leaf and its tree-r-last path do not hash")
    other_root = dataclasses.replace(proof.inclusion_proofs[2], root=bytes(32))
    rejected(dataclasses.replace(proof, inclusion_proofs=(*proof.inclusion_proofs[:2],
                                                          other_root)),
             r"challenge 2 \(node 63\): the tree-r-last root differs")
    swapped = dataclasses.replace(proof, comm_c=proof.comm_r_last, comm_r_last=proof.comm_c)
    rejected(swapped, "CommR")


def test_one_flipped_byte_of_the_sealed_file_fails(copy: Sealed) -> None:
    challenges = fallback_challenges(V1_1, fresh_randomness(), copy.sector_id)
    flip_byte(copy.sealed, 32 * 17 + 5)
    # In 2 KiB, tree-r-last keeps only its root: every challenge rebuilds all 64 leaves.
    with pytest.raises(CorruptDataError, match=r"challenge 0 \(node \d+\): the sealed file "
                                               r".* is damaged: leaves 0\.\.63 do not hash"):
        _prove(copy, challenges)


def test_one_flipped_byte_of_a_tree_r_last_file_fails(copy: Sealed) -> None:
    challenges = fallback_challenges(V1_1, fresh_randomness(), copy.sector_id)
    (tree_file,) = tree_r_last_layout(copy.cache, V1_1.shape, 1).paths()
    assert tree_file.stat().st_size == 32  # 2 KiB: only the root row is kept
    flip_byte(tree_file, 7)
    with pytest.raises(CorruptDataError, match=r"challenge 0 .*: the tree-r-last file "
                                               r".*tree-r-last.dat \(or p_aux\) is damaged"):
        _prove(copy, challenges)


def test_a_tree_r_last_rebuilt_from_a_damaged_replica_fails(copy: Sealed) -> None:
    """The files agree with each other, but no longer with p_aux and CommR: the holder
    refuses, and the verifier rejects the proof the files give all the same."""
    challenges = fallback_challenges(V1_1, RANDOMNESS, copy.sector_id)
    flip_byte(copy.sealed, 100)
    tree = tree_r_last_layout(copy.cache, V1_1.shape, 1)
    tree.build(map_nodes(copy.sealed, 64))
    with pytest.raises(CorruptDataError, match="does not hash to p_aux's comm_r_last"):
        _prove(copy, challenges)
    p_aux = PersistentAux.read(copy.cache)
    replica = map_nodes(copy.sealed, 64)
    given = SectorPoStProof(tuple(tree.prove(c, replica) for c in challenges),
                            p_aux.comm_c, p_aux.comm_r_last)
    with pytest.raises(VerificationError, match=r"challenge 0 .*root differs from comm_r_last"):
        verify_sector_proof(given, registered_proof=V1_1, comm_r=copy.pc2.comm_r,
                            challenges=challenges)


def test_missing_or_short_files_are_named(copy: Sealed) -> None:
    with copy.sealed.open("r+b") as f:
        f.truncate(1000)
    with pytest.raises(CorruptDataError, match=r"sealed file .* has 1000 bytes"):
        _prove(copy, [1])
    copy.sealed.unlink()
    with pytest.raises(InvalidInputError, match=r"sealed file .* does not exist"):
        _prove(copy, [1])


def test_p_aux_is_required(copy: Sealed) -> None:
    (copy.cache / "p_aux").unlink()
    with pytest.raises(CorruptDataError, match="p_aux is missing"):
        _prove(copy, [1])


def test_challenges_outside_the_sector_are_refused(sealed: Sealed) -> None:
    with pytest.raises(InvalidInputError, match="node 64 is outside"):
        _prove(sealed, [3, 64])
