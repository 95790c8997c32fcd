"""``sealagent bench`` as an operator runs it: a real child process, JSON out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sealagent import benchmark
from sealagent.benchmark import run_bench
from sealagent.cli.bench import render_report
from sealagent.errors import ConfigError
from sealagent.proofs import unsealed_commitment_to_cid, zero_piece_commitment

STEPS = ["Parents", "AddPiece", "PreCommit1", "PreCommit2", "Commit1", "Verify", "Commit2",
         "Finalize", "Unseal"]


NO_PARAMS = ("no Groth16 parameters for 2KiB (create them once with 'sealagent params "
             "generate --sector-size 2KiB')")


@pytest.fixture(autouse=True)
def _empty_parameter_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Groth16 parameters: Commit2 is skipped with the reason."""
    monkeypatch.setenv("FIL_PROOFS_PARAMETER_CACHE", str(tmp_path / "params"))


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sealagent bench ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "sealagent", "bench", *args], cwd=cwd,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300,
                          check=False)


def test_bench_2kib_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = bench("--sector-size", "2KiB", "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    assert {"sector_size", "plugins", "phases", "comm_d", "comm_r", "verified",
            "unseal_ok"} <= set(report)
    assert report["sector_size"] == 2048
    assert report["plugins"] == []
    assert report["verified"] is True and report["unseal_ok"] is True
    assert report["comm_d"].startswith("baga6ea4seaq")
    assert report["comm_r"].startswith("bagboea4b5abc")
    phases = {p["name"]: p for p in report["phases"]}
    assert [p["name"] for p in report["phases"]] == STEPS
    for name in STEPS:
        row = phases[name]
        assert set(row) >= {"name", "wall_s", "cpu_s", "peak_rss_bytes", "backend"}
        if name != "Commit2":
            assert row["wall_s"] >= 0 and row["cpu_s"] >= 0 and row["peak_rss_bytes"] > 0
    assert phases["PreCommit1"]["backend"] == "cpu"
    assert phases["Verify"]["backend"] == "proofs"
    assert phases["Commit2"]["backend"] is None
    assert phases["Commit2"]["skipped"] == NO_PARAMS
    assert report["pc1_us_per_label"] > 0
    assert "Commit2" in proc.stdout and "skipped: no Groth16 parameters for 2KiB" in proc.stdout
    assert "bench: PreCommit1 …" in proc.stderr
    sealing = sum(phases[n]["wall_s"] for n in ("AddPiece", "PreCommit1", "PreCommit2",
                                                 "Commit1", "Verify"))
    print(f"2 KiB AddPiece..Commit1 + verify: {sealing:.3f} s")


def test_unknown_plugin_fails_with_the_list(tmp_path: Path) -> None:
    proc = bench("--sector-size", "2KiB", "--plugin", "no-such", cwd=tmp_path)
    assert proc.returncode == 1
    assert "unknown plugin 'no-such'; installed:" in proc.stderr
    assert "cpu" in proc.stderr


def test_keep_and_cc_leave_a_sealed_zero_sector(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmark, "HEARTBEAT_S", 0.02)
    keep, lines = tmp_path / "sector", list[str]()
    report = run_bench("2KiB", cc=True, keep=keep, progress=lines.append)
    assert report.ok
    assert any(line.startswith("Commit1 … still running (") for line in lines)
    assert "PreCommit1: layer-2 64/64 (100 %)" in lines
    assert "PreCommit2: tree-r-last done" in lines
    assert f"Commit2: skipped: {NO_PARAMS}" in lines
    assert report.comm_d == unsealed_commitment_to_cid(zero_piece_commitment(2048))
    assert (keep / "sealed" / "s-t01000-1").stat().st_size == 2048
    assert not (keep / "piece.dat").exists()
    text = render_report(report)
    assert "committed capacity" in text and "verified: yes" in text


def test_keep_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(ConfigError, match="not empty"):
        run_bench("2KiB", keep=tmp_path)


@pytest.mark.slow
def test_isolated_phases_report_their_own_processes(tmp_path: Path) -> None:
    lines: list[str] = []
    report = run_bench("2KiB", isolate=True, progress=lines.append)
    assert report.ok
    assert report.step("PreCommit1").backend == "cpu"
    assert (report.step("PreCommit1").peak_rss_bytes or 0) > 1 << 20
    assert "PreCommit1: layer-2 64/64 (100 %)" in lines
    # Finalize's child needs less than this process, which has run every library step.
    assert (report.step("Finalize").peak_rss_bytes or 0) < (report.step("Verify").peak_rss_bytes
                                                          or 0)
