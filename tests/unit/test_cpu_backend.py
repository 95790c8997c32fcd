"""The ``cpu`` reference backend, phase by phase, and the backend-comparison kit."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import sealagent_cpu
from sealagent import hookimpl
from sealagent.errors import PhaseFailedError
from sealagent.phases import (
    AddPieceRequest,
    AddPieceResult,
    Commit1Request,
    Commit1Result,
    FinalizeRequest,
    FinalizeResult,
    Phase,
    PreCommit1Request,
    PreCommit1Result,
    PreCommit2Request,
    PreCommit2Result,
    SectorPaths,
    SectorRef,
    UnsealRequest,
    UnsealResult,
)
from sealagent.plugins import PluginSet, Selection, run_phase, run_phase_in_subprocess
from sealagent.proofs import (
    sealed_commitment_to_cid,
    unsealed_commitment_to_cid,
    zero_piece_commitment,
)
from sealagent.testing import (
    SectorInputs,
    assert_backend_matches_reference,
    compare_trees,
)
from sealagent.testing import sector_inputs as _sector_inputs

sector_inputs = _sector_inputs
"""The fixture :mod:`sealagent.testing` gives plugin authors, used here as they would."""

VECTOR = "derived_end_to_end_2KiB_v1_1_pattern"


@pytest.fixture(scope="module")
def cpu() -> Selection:
    """The reference backend alone."""
    return PluginSet.load(autoload=False).select([])


@dataclass(frozen=True)
class Sealed:
    """A 2 KiB sector sealed by ``cpu`` from the end-to-end vector's inputs."""

    root: Path
    sector: SectorRef
    paths: SectorPaths
    data: bytes
    ticket: str
    ap: AddPieceResult
    pc1: PreCommit1Result
    pc2: PreCommit2Result
    c1: Commit1Result


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory, cpu: Selection) -> Iterator[Sealed]:
    """Seal once for the whole module (AddPiece through Commit1)."""
    vector = json.loads((Path(__file__).parents[1] / "kat" / "vectors.json").read_text())
    inputs = {v["name"]: v for v in vector["vectors"]}[VECTOR]["inputs"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIL_PROOFS_PARENT_CACHE",
                  str(tmp_path_factory.getbasetemp() / "filecoin-parents"))
        root = tmp_path_factory.mktemp("sealed")
        sector = SectorRef(miner=1000, number=inputs["sector_id"], proof="StackedDrg2KiBV1_1")
        paths = SectorPaths.under(root, sector)
        data = bytes(i % 251 for i in range(2032))
        (root / "piece").write_bytes(data)
        ticket = inputs["ticket_hex"]

        def run(request: Any, expected: type[Any]) -> Any:
            return run_phase(request.phase, request, cpu).result_as(expected)

        ap = run(AddPieceRequest(sector, paths, 2032, str(root / "piece")), AddPieceResult)
        pc1 = run(PreCommit1Request(sector, paths, ticket, (ap.piece,)), PreCommit1Result)
        pc2 = run(PreCommit2Request(sector, paths, pc1.pc1_output), PreCommit2Result)
        c1 = run(Commit1Request(sector, paths, ticket, inputs["seed_hex"], (ap.piece,),
                                pc2.comm_d, pc2.comm_r), Commit1Result)
        yield Sealed(root, sector, paths, data, ticket, ap, pc1, pc2, c1)


def test_backend_info() -> None:
    info = sealagent_cpu.sealagent_backend_info()
    assert (info.name, info.available) == ("cpu", True)


def test_seal_matches_the_end_to_end_vector(sealed: Sealed, vectors: dict[str, Any]) -> None:
    expected = vectors[VECTOR]["expected"]
    assert sealed.ap.piece.cid == expected["unsealed_cid"]
    assert sealed.ap.offset == 0 and sealed.ap.written == 2032
    assert sealed.pc2.comm_d == expected["unsealed_cid"]
    assert sealed.pc2.comm_r == expected["sealed_cid"]
    assert Path(sealed.paths.sealed).read_bytes().hex() == expected["replica_hex"]


def test_commit1_output_is_json_for_the_sector(sealed: Sealed) -> None:
    c1 = json.loads(sealed.c1.c1_output)
    assert isinstance(c1, dict)
    assert "vanilla_proofs" in c1


def test_commit1_refuses_wrong_commitments(sealed: Sealed, cpu: Selection) -> None:
    wrong = sealed_commitment_to_cid(b"\1" + bytes(31))
    request = Commit1Request(sealed.sector, sealed.paths, sealed.ticket, "03" * 32,
                             (sealed.ap.piece,), sealed.pc2.comm_d, wrong)
    with pytest.raises(PhaseFailedError,
                       match=f"CommitmentMismatchError: the sector's comm_r is "
                             f"{sealed.pc2.comm_r}, not {wrong}"):
        run_phase(Phase.COMMIT1, request, cpu)


def test_unseal_recovers_the_data(sealed: Sealed, cpu: Selection, tmp_path: Path) -> None:
    out = tmp_path / "range"
    request = UnsealRequest(sealed.sector, sealed.paths, sealed.ticket, sealed.pc2.comm_d,
                            127, 508, str(out))
    result = run_phase(Phase.UNSEAL, request, cpu).result_as(UnsealResult)
    assert result.written == 508
    assert out.read_bytes() == sealed.data[127:635]


def test_finalize_keeps_what_proving_needs(sealed: Sealed, cpu: Selection,
                                           tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sealed.root, copy)
    paths = SectorPaths.under(copy, sealed.sector)
    result = run_phase(Phase.FINALIZE, FinalizeRequest(sealed.sector, paths, False),
                       cpu).result_as(FinalizeResult)
    removed = {Path(p).name for p in result.removed}
    assert "sc-02-data-layer-1.dat" in removed
    assert "sc-02-data-tree-d.dat" in removed
    assert Path(paths.unsealed).name in removed
    left = {p.name for p in Path(paths.cache).iterdir()}
    assert {"p_aux", "t_aux"} <= left
    assert any(name.startswith("sc-02-data-tree-r-last") for name in left)
    assert not Path(paths.unsealed).exists()


def test_pledge_piece_is_the_zero_commitment(cpu: Selection, tmp_path: Path) -> None:
    sector = SectorRef(miner=1000, number=2, proof="StackedDrg2KiBV1_1")
    request = AddPieceRequest(sector, SectorPaths.under(tmp_path, sector), 2032)
    result = run_phase(Phase.ADD_PIECE, request, cpu).result_as(AddPieceResult)
    assert result.piece.cid == unsealed_commitment_to_cid(zero_piece_commitment(2048))
    assert Path(request.paths.unsealed).read_bytes() == bytes(2048)


# -- the comparison kit (sealagent.testing) ------------------------------------------------


def _corrupting_backend() -> ModuleType:
    """A PreCommit2 that flips one bit of the replica after the reference wrote it."""
    module = ModuleType("corrupting_backend")

    @hookimpl
    def sealagent_precommit2(request: PreCommit2Request) -> PreCommit2Result:
        result = sealagent_cpu.sealagent_precommit2(request)
        sealed = Path(request.paths.sealed)
        data = bytearray(sealed.read_bytes())
        data[100] ^= 1
        sealed.write_bytes(bytes(data))
        return result

    module.sealagent_precommit2 = sealagent_precommit2  # type: ignore[attr-defined]
    return module


def test_reference_matches_itself(sector_inputs: SectorInputs, tmp_path: Path) -> None:
    results = assert_backend_matches_reference(sealagent_cpu, "AddPiece", sector_inputs,
                                               tmp_path)
    assert [r.to_json()["offset"] for r in results] == [0, 1024]


def test_a_changed_file_is_caught(sector_inputs: SectorInputs, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"differs: sealed/s-t01000-1"):
        assert_backend_matches_reference(_corrupting_backend(), Phase.PRECOMMIT2,
                                         sector_inputs, tmp_path)


def test_a_declining_backend_is_caught(sector_inputs: SectorInputs, tmp_path: Path) -> None:
    class Declines:
        @hookimpl
        def sealagent_addpiece(self, request: AddPieceRequest) -> None:
            return None

    with pytest.raises(AssertionError, match=r"ran on \['cpu'\], not on 'candidate'"):
        assert_backend_matches_reference(Declines(), Phase.ADD_PIECE, sector_inputs, tmp_path)


def test_compare_trees_names_every_difference(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "d").mkdir(parents=True)
        (root / "d" / "same").write_bytes(b"x")
    (a / "only-a").write_bytes(b"")
    (b / "only-b").write_bytes(b"")
    (a / "d" / "diff").write_bytes(b"1")
    (b / "d" / "diff").write_bytes(b"2")
    assert compare_trees(a, b) == ["missing: only-a", "unexpected: only-b", "differs: d/diff"]


def test_a_phase_runs_the_same_in_a_child_process(cpu: Selection, tmp_path: Path) -> None:
    sector = SectorRef(miner=1000, number=3, proof="StackedDrg2KiBV1_1")
    results = []
    for name in ("here", "child"):
        request = AddPieceRequest(sector, SectorPaths.under(tmp_path / name, sector), 2032)
        if name == "here":
            results.append(run_phase(Phase.ADD_PIECE, request, cpu).result)
        else:
            outcome = run_phase_in_subprocess(Phase.ADD_PIECE, request, cpu).wait()
            assert outcome.backend == "cpu"
            results.append(outcome.result)
    assert results[0] == results[1]
    assert compare_trees(tmp_path / "here", tmp_path / "child") == []


def test_the_example_plugin_matches_the_reference(sector_inputs: SectorInputs,
                                                  tmp_path: Path) -> None:
    package = (Path(__file__).parents[2] / "examples" / "third_party_plugin" / "src"
               / "sealagent_example" / "__init__.py")
    spec = importlib.util.spec_from_file_location("sealagent_example", package)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (result,) = assert_backend_matches_reference(module, Phase.PRECOMMIT2, sector_inputs,
                                                 tmp_path)
    assert isinstance(result, PreCommit2Result)


def test_a_phase_child_reports_its_stages(sealed: Sealed, cpu: Selection) -> None:
    process = run_phase_in_subprocess(
        Phase.PRECOMMIT2, PreCommit2Request(sealed.sector, sealed.paths,
                                            sealed.pc1.pc1_output), cpu)
    assert process.wait().result == sealed.pc2
    events = process.progress()
    assert [e.stage for e in events] == ["tree-c", "tree-c-build", "tree-c-build", "encode",
                                         "tree-r-last"]
    assert all(e.complete for e in events if e.stage != "tree-c-build")
    assert [e.elapsed_s for e in events] == sorted(e.elapsed_s for e in events)
