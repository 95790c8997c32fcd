"""``sealagent devnet`` end to end, as a child process: the README's main job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sealagent.cli import devnet, main

DEVNET = [sys.executable, "-m", "sealagent", "devnet"]


def run(args: list[str], timeout: float = 240,
        params: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if params is not None:
        env["FIL_PROOFS_PARAMETER_CACHE"] = str(params)
    return subprocess.run([*DEVNET, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def test_devnet_seals_two_sectors(tmp_path: Path) -> None:
    result = tmp_path / "out.json"
    done = run(["--sectors", "2", "--dir", str(tmp_path / "net"), "--json", str(result)])
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Snark = false" in out
    assert "2 agent(s) registered: worker-1, worker-2" in out
    assert "dashboard at http://127.0.0.1:" in out and "/dashboard/: log in with" in out
    # progress lines as states change (a 0.25 s poll may step over a short state)
    assert re.search(r"sector 0: (PreCommit1|PreCommit2|WaitSeed|Committing)\b", out), out
    assert "sector 1: Proving" in out
    header = next(line for line in out.splitlines() if "Sector" in line and "PC1" in line)
    cells = [cell.strip() for cell in header.split("┃") if cell.strip()]
    assert cells == ["Sector", "State", "AP", "PC1", "PC2", "C1", "FIN", "GET", "Total",
                     "Workers"]
    rows = [line for line in out.splitlines() if "Proving" in line and "manager" in line]
    assert len(rows) == 2
    assert not (tmp_path / "net").exists()  # a successful devnet cleans up
    data = json.loads(result.read_text())
    assert data["ok"] is True and data["sector_size"] == 2048 and data["snark"] is False
    assert [(s["number"], s["state"]) for s in data["sectors"]] == [(0, "Proving"),
                                                                      (1, "Proving")]
    store = str(tmp_path / "net" / "store")
    for sector in data["sectors"]:
        assert set(sector["phases"]) == {"AP", "PC1", "PC2", "C1", "FIN", "GET"}
        assert all(seconds > 0 for seconds in sector["phases"].values())
        assert sector["total_seconds"] >= sum(sector["phases"].values())  # one after another
        # the agents seal; the manager's built-in agent moves the files to its store path
        assert set(sector["workers"]) <= {"worker-1", "worker-2", "manager"}
        assert "manager" in sector["workers"] and len(sector["workers"]) >= 2
        stored = [place for place in sector["files"]
                  if {"sealed", "cache"} & set(place["file_types"])]
        assert len(stored) == 1, sector["files"]
        assert {"sealed", "cache"} <= set(stored[0]["file_types"])
        assert (stored[0]["local"], stored[0]["can_store"], stored[0]["can_seal"],
                stored[0]["primary"]) == (store, True, False, True)
        assert all(place["urls"] for place in sector["files"])


def test_devnet_that_times_out_fails_and_keeps_its_logs(tmp_path: Path) -> None:
    done = run(["--sectors", "1", "--workers", "1", "--timeout", "0.5",
                "--dir", str(tmp_path / "net")])
    assert done.returncode == 1
    assert "timed out after 0.5s" in done.stdout
    assert (tmp_path / "net" / "logs" / "worker-1.log").exists()
    assert (tmp_path / "net" / "logs" / "manager.log").exists()


def test_devnet_with_snark_needs_the_groth16_parameters(tmp_path: Path) -> None:
    done = run(["--snark", "--dir", str(tmp_path / "net")], timeout=60,
               params=tmp_path / "params")
    assert done.returncode == 2
    assert "Commit2" in done.stderr and "sealagent params generate" in done.stderr
    assert not (tmp_path / "net").exists()


def test_devnet_with_multicore_seals_to_proving(tmp_path: Path) -> None:
    net = tmp_path / "net"
    done = run(["--sectors", "1", "--workers", "1", "--plugin", "multicore", "--keep",
                "--dir", str(net)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sector 0: Proving" in done.stdout
    log = (net / "logs" / "worker-1.log").read_text()
    assert "plugin warm" in log
    finished = [line for line in log.splitlines() if "phase finished" in line]
    assert sum("multicore" in line for line in finished) >= 2  # PC1 and PC2


def test_a_devnet_that_cannot_start_says_so_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(devnet, "START_TIMEOUT", 0.0)
    status = main(["devnet", "--sectors", "1", "--workers", "1", "--dir", str(tmp_path / "net")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("sealagent: error: the manager did not start within 0 s (see ")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
