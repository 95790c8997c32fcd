"""``sealagent proofs commp``: piece CIDs of files, zero-extended as Lotus does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sealagent.cli import main
from sealagent.cli.proofs import unpadded_piece_size

ZERO_128_CID = "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"


def commp(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Run the command with ``--json`` and parse its output."""
    assert main(["proofs", "commp", str(path), "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


@pytest.mark.parametrize(("payload", "size"), [
    (0, 127), (1, 127), (127, 127), (128, 254), (508, 508), (509, 1016), (2032, 2032),
    (2033, 4064),
])
def test_payload_is_zero_extended_to_127_times_a_power_of_two(payload: int, size: int) -> None:
    assert unpadded_piece_size(payload) == size


def test_exact_piece_matches_the_known_answer(tmp_path: Path, vectors: dict[str, Any],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    vector = vectors["commp_127_each_0_1_2_3"]
    path = tmp_path / "piece"
    path.write_bytes(bytes.fromhex(vector["inputs"]["unpadded_hex"]))
    out = commp(path, capsys)
    assert out == {"cid": vector["expected"]["piece_cid"], "size": 512,
                   "unpadded_size": 508, "payload_size": 508}


def test_short_file_is_zero_extended(tmp_path: Path, vectors: dict[str, Any],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = bytes.fromhex(vectors["commp_127_each_0_1_2_3"]["inputs"]["unpadded_hex"])
    path = tmp_path / "payload"
    path.write_bytes(data + b"\0")  # one byte over 508: the piece becomes 1016 bytes
    out = commp(path, capsys)
    assert out["cid"] == vectors["commp_127_each_0_1_2_3_then_508_zeros"]["expected"][
        "piece_cid"]
    assert (out["size"], out["unpadded_size"], out["payload_size"]) == (1024, 1016, 509)


def test_empty_file_is_the_smallest_zero_piece(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty"
    path.touch()
    assert commp(path, capsys)["cid"] == ZERO_128_CID


def test_text_output_looks_like_lotus(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "payload"
    path.write_bytes(b"x" * 1000)
    assert main(["proofs", "commp", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CID:  baga6ea4seaq")
    assert lines[1] == "Piece size:  1 KiB ( 1024 B )"
    assert lines[2] == "Payload:  1000 B, zero-extended to 1016 B (padded 1024 B)"


def test_missing_file_is_a_usage_error(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proofs", "commp", str(tmp_path / "nope")]) == 2
    assert "cannot read" in capsys.readouterr().err
