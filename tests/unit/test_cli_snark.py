"""``sealagent proofs circuit-info`` and ``sealagent params``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealagent.cli import main


@pytest.mark.parametrize("args", [
    [],
    ["--sector-size", "2KiB", "--nodes", "8"],
    ["--nodes", "8", "--tree", "8-0"],
    ["--nodes", "12"],
    ["--nodes", "8", "--layers", "3"],
    ["--sector-size", "2KiB", "--proof", "StackedDrg8MiBV1_1"],
])
def test_circuit_info_refuses_bad_arguments(args: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proofs", "circuit-info", *args]) == 2
    assert capsys.readouterr().err.strip()


@pytest.mark.slow
def test_circuit_info_of_the_rust_test_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proofs", "circuit-info", "--nodes", "8", "--layers", "2", "--challenges",
                 "1", "--tree", "8-0-0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["constraints"], out["public_inputs"]) == (1_199_620, 22)


@pytest.mark.slow
def test_circuit_info_of_a_sector_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proofs", "circuit-info", "--sector-size", "2KiB"]) == 0
    assert capsys.readouterr().out.strip() == (
        "StackedDrg2KiBV1_1: constraints: 2687921, public inputs: 40, partitions: 1")


def test_params_info_names_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FIL_PROOFS_PARAMETER_CACHE", str(tmp_path))
    assert main(["params", "info", "--sector-size", "2KiB", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["present"] is False and out["proof"] == "StackedDrg2KiBV1_1"
    stem = Path(out["params"]).name
    assert stem.startswith("v28-stacked-proof-of-replication-merkletree-poseidon_hasher-8-0-0-"
                           "sha256_hasher-032d3138d22506ec")
    assert stem.endswith(f"-sealagent-{out['circuit_digest'][:16]}.params")
    assert Path(out["params"]).parent == tmp_path
