"""Known answers for the Groth16 parameter file names (vector groth16_parameter_file_names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sealagent.proofs import RegisteredSealProof, default_proof
from sealagent.proofs.parameters import (
    parameter_file_stem,
    parameter_files,
    parameter_identifier,
)


def _files(vectors: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = vectors["groth16_parameter_file_names"]["expected"]["files"]
    return files


def test_every_published_size_is_in_the_vector(vectors: dict[str, dict[str, Any]]) -> None:
    sizes = {f["sector_size"] for f in _files(vectors)}
    assert sizes == {p.sector_size for p in RegisteredSealProof}


@pytest.mark.parametrize("family_offset", [0, 5, 10, 15])
def test_identifier_and_file_stem_match_upstream(
    vectors: dict[str, dict[str, Any]], family_offset: int
) -> None:
    for expected in _files(vectors):
        base = default_proof(expected["sector_size"])
        proof = RegisteredSealProof(base.value - 5 + family_offset)
        assert parameter_identifier(proof) == expected["identifier"]
        assert parameter_file_stem(proof) == expected["file_stem"]


def test_files_live_in_the_parameter_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FIL_PROOFS_PARAMETER_CACHE", str(tmp_path))
    files = parameter_files("StackedDrg2KiBV1_1")
    stem = parameter_file_stem(5)
    assert files.params == tmp_path / f"{stem}.params"
    assert files.vk == tmp_path / f"{stem}.vk"
    assert files.meta == tmp_path / f"{stem}.meta"


def test_default_parameter_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIL_PROOFS_PARAMETER_CACHE", raising=False)
    assert parameter_files(5).vk.parent == Path("/var/tmp/filecoin-proof-parameters")
