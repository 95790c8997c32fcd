"""PreCommit1, PreCommit2, unsealing and the cache files (docs/porep.md §4, §6, §7)."""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealagent.errors import (
    CommitmentMismatchError,
    CorruptDataError,
    InvalidInputError,
    PieceSizeError,
    StorageError,
    UnknownProofError,
)
from sealagent.proofs import (
    PersistentAux,
    PieceInfo,
    PreCommit1Output,
    RegisteredSealProof,
    SealCommitPhase1Output,
    SealPreCommitOutput,
    StoreConfig,
    TemporaryAux,
    add_piece,
    clear_cache,
    clear_synthetic_proofs,
    generate_data_commitment,
    generate_replica_id,
    seal_commit_phase1,
    seal_pre_commit_phase1,
    seal_pre_commit_phase2,
    unseal_range,
)
from sealagent.proofs.cache_files import layer_path

V1_1 = RegisteredSealProof.StackedDrg2KiBV1_1
PROVER_ID = (1000).to_bytes(2, "little") + bytes(30)
TICKET = bytes(range(32, 64))
SEED = bytes(range(64, 96))
PIECE_SIZES = (1016, 508)
"""Two pieces that leave a quarter of the 2 KiB sector to zero filler."""


@dataclass
class Sealed:
    """A 2 KiB sector sealed through PC2 (and optionally C1) in a temporary directory."""

    proof: RegisteredSealProof
    root: Path
    data: list[bytes]
    pieces: list[PieceInfo]
    sector_id: int
    pc1: PreCommit1Output
    pc2: SealPreCommitOutput
    c1: SealCommitPhase1Output | None

    @property
    def cache(self) -> Path:
        """The cache directory."""
        return self.root / "cache"

    @property
    def sealed(self) -> Path:
        """The sealed replica."""
        return self.root / "sealed"

    @property
    def unsealed(self) -> Path:
        """The staged sector."""
        return self.root / "unsealed"


def stage(proof: RegisteredSealProof, root: Path) -> tuple[list[bytes], list[PieceInfo]]:
    """Write the test pieces into ``root/unsealed``; return their bytes and infos."""
    (root / "cache").mkdir(parents=True, exist_ok=True)
    data: list[bytes] = []
    pieces: list[PieceInfo] = []
    done: list[int] = []
    for n, size in enumerate(PIECE_SIZES):
        payload = bytes((7 * i + 13 * n) % 256 for i in range(size))
        out = add_piece(proof, payload, root / "unsealed", size, done)
        data.append(payload)
        pieces.append(out.piece)
        done.append(size)
    return data, pieces


def seal_sector(proof: RegisteredSealProof, root: Path, sector_id: int = 7,
                commit: bool = True) -> Sealed:
    """Stage, PC1, PC2 and (with ``commit``) C1 one sector under ``root``."""
    data, pieces = stage(proof, root)
    pc1 = seal_pre_commit_phase1(proof, root / "cache", root / "unsealed", root / "sealed",
                                 prover_id=PROVER_ID, sector_id=sector_id, ticket=TICKET,
                                 pieces=pieces)
    pc2 = seal_pre_commit_phase2(pc1, root / "cache", root / "sealed")
    c1 = (seal_commit_phase1(proof, root / "cache", root / "sealed", prover_id=PROVER_ID,
                             sector_id=sector_id, ticket=TICKET, seed=SEED, pieces=pieces)
          if commit else None)
    return Sealed(proof, root, data, pieces, sector_id, pc1, pc2, c1)


@pytest.fixture
def sector(tmp_path: Path) -> Sealed:
    """A fresh V1_1 sector through PC2."""
    return seal_sector(V1_1, tmp_path, commit=False)


def _unseal(s: Sealed, offset: int, num_bytes: int) -> bytes:
    out = io.BytesIO()
    written = unseal_range(s.proof, s.cache, s.sealed, out, prover_id=PROVER_ID,
                           sector_id=s.sector_id, comm_d=s.pc2.comm_d, ticket=TICKET,
                           offset=offset, num_bytes=num_bytes)
    assert written == num_bytes
    return out.getvalue()


def test_replica_id_layout() -> None:
    comm_d, porep_id = bytes([5] * 32), V1_1.porep_id
    rid = generate_replica_id(PROVER_ID, 2**40 + 3, TICKET, comm_d, porep_id)
    assert rid[31] < 0x40
    other = generate_replica_id(PROVER_ID, 2**40 + 4, TICKET, comm_d, porep_id)
    assert rid != other
    with pytest.raises(InvalidInputError):
        generate_replica_id(PROVER_ID, -1, TICKET, comm_d, porep_id)
    with pytest.raises(InvalidInputError):
        generate_replica_id(PROVER_ID[:31], 1, TICKET, comm_d, porep_id)


def test_pc1_copies_data_and_writes_the_cache(sector: Sealed) -> None:
    names = sorted(os.listdir(sector.cache))
    assert names == ["p_aux", "sc-02-data-layer-1.dat", "sc-02-data-layer-2.dat",
                     "sc-02-data-tree-c.dat", "sc-02-data-tree-d.dat",
                     "sc-02-data-tree-r-last.dat", "t_aux"]
    assert sector.pc1.comm_d == generate_data_commitment(V1_1, sector.pieces)
    assert sector.pc2.comm_d == sector.pc1.comm_d
    assert sector.pc1.replica_id == generate_replica_id(PROVER_ID, 7, TICKET,
                                                        sector.pc1.comm_d, V1_1.porep_id)
    assert sector.sealed.stat().st_size == 2048
    assert sector.sealed.read_bytes() != sector.unsealed.read_bytes()


def test_pc1_output_json_round_trip(sector: Sealed) -> None:
    obj = sector.pc1.to_json()
    assert obj["registered_proof"] == "StackedDrg2KiBV1_1"
    labels = obj["labels"]["StackedDrg2KiBV1"]["labels"]
    assert [c["id"] for c in labels] == ["layer-1", "layer-2"]
    assert obj["config"] == {"path": str(sector.cache), "id": "tree-d", "size": 127,
                             "rows_to_discard": 0}
    assert PreCommit1Output.from_json(json.dumps(obj)) == sector.pc1
    bare = {k: v for k, v in obj.items() if k not in ("replica_id", "_lotus_SealRandomness")}
    parsed = PreCommit1Output.from_json(bare)
    assert parsed.replica_id is None
    assert parsed.ticket is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.pop("comm_d"),
        lambda o: o.update(labels={"StackedDrg8MiBV1": o["labels"]["StackedDrg2KiBV1"]}),
        lambda o: o["labels"]["StackedDrg2KiBV1"]["labels"].pop(),
        lambda o: o.update(comm_d=[0] * 31),
        lambda o: o.update(_lotus_SealRandomness="not base64!"),
        lambda o: o["config"].pop("rows_to_discard"),
    ],
)
def test_pc1_output_rejects_malformed_json(sector: Sealed, mutate: object) -> None:
    obj = json.loads(json.dumps(sector.pc1.to_json()))
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(InvalidInputError):
        PreCommit1Output.from_json(obj)
    with pytest.raises(InvalidInputError):
        PreCommit1Output.from_json("{not json")


def test_pc1_output_unknown_proof(sector: Sealed) -> None:
    obj = sector.pc1.to_json() | {"registered_proof": "StackedDrg3KiBV1"}
    with pytest.raises(UnknownProofError):
        PreCommit1Output.from_json(obj)


def test_aux_files(sector: Sealed) -> None:
    p_aux = PersistentAux.read(sector.cache)
    assert len(p_aux.comm_c + p_aux.comm_r_last) == 64
    t_aux = TemporaryAux.read(sector.cache)
    assert [c.id for c in t_aux.labels] == ["layer-1", "layer-2"]
    assert t_aux.tree_d_config == StoreConfig(str(sector.cache), "tree-d", 127, 0)
    assert t_aux.tree_c_config == StoreConfig(str(sector.cache), "tree-c", 73, 0)
    assert t_aux.tree_r_last_config == StoreConfig(str(sector.cache), "tree-r-last", 73, 1)
    raw = (sector.cache / "t_aux").read_bytes()
    assert raw[:8] == struct.pack("<Q", 2)
    path = str(sector.cache).encode()
    assert raw[8:16 + len(path)] == struct.pack("<Q", len(path)) + path
    assert raw.endswith(b"tree-c\x01" + struct.pack("<QQ", 73, 0))


def test_t_aux_moves_with_the_cache(sector: Sealed, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "t_aux").write_bytes((sector.cache / "t_aux").read_bytes())
    t_aux = TemporaryAux.read(moved)
    assert {c.path for c in (*t_aux.labels, t_aux.tree_d_config)} == {str(moved)}
    (moved / "t_aux").write_bytes((sector.cache / "t_aux").read_bytes()[:-3])
    with pytest.raises(CorruptDataError):
        TemporaryAux.read(moved)
    (moved / "p_aux").write_bytes(bytes(63))
    with pytest.raises(CorruptDataError):
        PersistentAux.read(moved)


def test_unseal_whole_sector_and_ranges(sector: Sealed) -> None:
    first, second = sector.data
    assert _unseal(sector, 0, 1016) == first
    assert _unseal(sector, 1016, 508) == second
    assert _unseal(sector, 1500, 532) == second[484:] + bytes(508)
    assert _unseal(sector, 3, 1) == first[3:4]


def test_unseal_to_a_path(sector: Sealed, tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    unseal_range(V1_1, sector.cache, sector.sealed, out, prover_id=PROVER_ID, sector_id=7,
                 comm_d=sector.pc2.comm_d, ticket=TICKET, offset=100, num_bytes=900)
    assert out.read_bytes() == sector.data[0][100:1000]


def test_clear_cache_keeps_what_proving_needs_and_unseal_recomputes(sector: Sealed) -> None:
    removed = clear_cache(2048, sector.cache)
    assert {p.name for p in removed} == {"sc-02-data-tree-d.dat", "sc-02-data-tree-c.dat",
                                         "sc-02-data-layer-1.dat", "sc-02-data-layer-2.dat"}
    assert sorted(os.listdir(sector.cache)) == ["p_aux", "sc-02-data-tree-r-last.dat", "t_aux"]
    assert _unseal(sector, 0, 1016) == sector.data[0]
    assert sorted(os.listdir(sector.cache)) == ["p_aux", "sc-02-data-tree-r-last.dat", "t_aux"]
    (sector.cache / "syn-porep-vanilla-proofs.dat").write_bytes(b"x")
    assert [p.name for p in clear_synthetic_proofs(sector.cache)] == [
        "syn-porep-vanilla-proofs.dat"]
    assert clear_synthetic_proofs(sector.cache) == []
    with pytest.raises(UnknownProofError):
        clear_cache(4096, sector.cache)


def test_unseal_with_the_wrong_ticket_gives_other_bytes(sector: Sealed) -> None:
    out = io.BytesIO()
    unseal_range(V1_1, sector.cache, sector.sealed, out, prover_id=PROVER_ID, sector_id=7,
                 comm_d=sector.pc2.comm_d, ticket=bytes(32), offset=0, num_bytes=1016)
    assert out.getvalue() != sector.data[0]


def test_unseal_rejects_bad_ranges(sector: Sealed) -> None:
    for offset, size in ((0, 2033), (2000, 40), (-1, 5)):
        with pytest.raises(InvalidInputError):
            _unseal(sector, offset, size)


def test_pc1_resumes_after_complete_layers(tmp_path: Path) -> None:
    _, pieces = stage(V1_1, tmp_path)
    stages: list[str] = []

    def pc1() -> PreCommit1Output:
        return seal_pre_commit_phase1(V1_1, tmp_path / "cache", tmp_path / "unsealed",
                                      tmp_path / "sealed", prover_id=PROVER_ID, sector_id=7,
                                      ticket=TICKET, pieces=pieces,
                                      progress=lambda stage, done, total: stages.append(stage))

    first = pc1()
    assert "layer-1" in stages and "layer-2" in stages and "tree-d" in stages
    stages.clear()
    layer_path(tmp_path / "cache", 2).unlink()
    assert pc1() == first
    assert "layer-1" not in stages and "layer-2" in stages
    stages.clear()
    assert pc1() == first
    assert not [s for s in stages if s.startswith("layer")]


def test_pc2_reports_progress_and_runs_again_identically(sector: Sealed) -> None:
    stages: set[str] = set()
    again = seal_pre_commit_phase2(sector.pc1, sector.cache, sector.sealed,
                                   progress=lambda stage, done, total: stages.add(stage))
    assert again == sector.pc2
    assert stages == {"tree-c", "tree-c-build", "encode", "tree-r-last"}


def test_pc1_wrong_pieces(tmp_path: Path) -> None:
    _, pieces = stage(V1_1, tmp_path)
    wrong = [PieceInfo(bytes(32), pieces[0].size), pieces[1]]
    with pytest.raises(CommitmentMismatchError):
        seal_pre_commit_phase1(V1_1, tmp_path / "cache", tmp_path / "unsealed",
                               tmp_path / "sealed", prover_id=PROVER_ID, sector_id=7,
                               ticket=TICKET, pieces=wrong)
    with pytest.raises(CommitmentMismatchError):
        seal_pre_commit_phase1(V1_1, tmp_path / "cache", tmp_path / "unsealed",
                               tmp_path / "sealed", prover_id=PROVER_ID, sector_id=7,
                               ticket=TICKET, pieces=pieces[:1])
    too_many = [*pieces, PieceInfo(bytes(32), 1024)]
    with pytest.raises(PieceSizeError):
        seal_pre_commit_phase1(V1_1, tmp_path / "cache", tmp_path / "unsealed",
                               tmp_path / "sealed", prover_id=PROVER_ID, sector_id=7,
                               ticket=TICKET, pieces=too_many)


@pytest.fixture
def staged(tmp_path: Path) -> Iterator[tuple[Path, list[PieceInfo]]]:
    """A staged sector and its pieces."""
    _, pieces = stage(V1_1, tmp_path)
    yield tmp_path, pieces


def test_pc1_input_errors(staged: tuple[Path, list[PieceInfo]]) -> None:
    root, pieces = staged

    def pc1(proof: object = V1_1, unsealed: Path = root / "unsealed",
            cache: Path = root / "cache", ticket: bytes = TICKET) -> None:
        seal_pre_commit_phase1(proof, cache, unsealed, root / "sealed",  # type: ignore[arg-type]
                               prover_id=PROVER_ID, sector_id=7, ticket=ticket, pieces=pieces)

    with pytest.raises(UnknownProofError):
        pc1(proof="StackedDrg3KiBV1")
    with pytest.raises(UnknownProofError):
        pc1(proof=20)
    with pytest.raises(InvalidInputError):
        pc1(unsealed=root / "missing")
    with pytest.raises(StorageError):
        pc1(cache=root / "no-cache")
    with pytest.raises(InvalidInputError):
        pc1(ticket=b"short")
    with open(root / "unsealed", "ab") as f:
        f.write(b"\0")
    with pytest.raises(CorruptDataError):
        pc1()


def test_pc2_truncated_layer(sector: Sealed) -> None:
    path = layer_path(sector.cache, 1)
    path.write_bytes(path.read_bytes()[:-32])
    with pytest.raises(CorruptDataError):
        seal_pre_commit_phase2(sector.pc1, sector.cache, sector.sealed)


def test_pc2_layer_of_another_replica(sector: Sealed) -> None:
    path = layer_path(sector.cache, 2)
    path.write_bytes(bytes(32) + path.read_bytes()[32:])
    with pytest.raises(CorruptDataError):
        seal_pre_commit_phase2(sector.pc1, sector.cache, sector.sealed)


def test_truncated_sealed_file(sector: Sealed) -> None:
    sector.sealed.write_bytes(sector.sealed.read_bytes()[:-1])
    with pytest.raises(CorruptDataError):
        seal_pre_commit_phase2(sector.pc1, sector.cache, sector.sealed)
    with pytest.raises(CorruptDataError):
        seal_commit_phase1(V1_1, sector.cache, sector.sealed, prover_id=PROVER_ID, sector_id=7,
                           ticket=TICKET, seed=SEED, pieces=sector.pieces)
    with pytest.raises(CorruptDataError):
        _unseal(sector, 0, 10)


def test_pc2_tree_d_changed(sector: Sealed) -> None:
    tree_d = sector.cache / "sc-02-data-tree-d.dat"
    raw = bytearray(tree_d.read_bytes())
    raw[-1] ^= 1
    tree_d.write_bytes(bytes(raw))
    with pytest.raises(CorruptDataError):
        seal_pre_commit_phase2(sector.pc1, sector.cache, sector.sealed)
    with pytest.raises(InvalidInputError):
        seal_pre_commit_phase2(sector.pc1.to_json(), sector.cache,  # type: ignore[arg-type]
                               sector.sealed)


def test_pc2_output_json(sector: Sealed) -> None:
    assert SealPreCommitOutput.from_json(json.dumps(sector.pc2.to_json())) == sector.pc2
    with pytest.raises(InvalidInputError):
        SealPreCommitOutput.from_json({"comm_r": [1, 2]})


@pytest.mark.slow
def test_8mib_flow(tmp_path: Path) -> None:
    """A whole 8 MiB seal: random data through PC1, PC2, C1, verification and unsealing."""
    from sealagent.proofs import verify_seal_commit_phase1

    proof = RegisteredSealProof.StackedDrg8MiBV1_1
    (tmp_path / "cache").mkdir()
    data = os.urandom(proof.shape.unpadded_size)
    piece = add_piece(proof, data, tmp_path / "unsealed", len(data)).piece
    pc1 = seal_pre_commit_phase1(proof, tmp_path / "cache", tmp_path / "unsealed",
                                 tmp_path / "sealed", prover_id=PROVER_ID, sector_id=9,
                                 ticket=TICKET, pieces=[piece])
    pc2 = seal_pre_commit_phase2(pc1, tmp_path / "cache", tmp_path / "sealed")
    c1 = seal_commit_phase1(proof, tmp_path / "cache", tmp_path / "sealed", prover_id=PROVER_ID,
                            sector_id=9, ticket=TICKET, seed=SEED, pieces=[piece])
    assert verify_seal_commit_phase1(SealCommitPhase1Output.from_json(c1.to_json()),
                                     PROVER_ID, 9)
    clear_cache(proof.sector_size, tmp_path / "cache")
    out = io.BytesIO()
    unseal_range(proof, tmp_path / "cache", tmp_path / "sealed", out, prover_id=PROVER_ID,
                 sector_id=9, comm_d=pc2.comm_d, ticket=TICKET, offset=1 << 20,
                 num_bytes=1 << 16)
    assert out.getvalue() == data[1 << 20 : (1 << 20) + (1 << 16)]
