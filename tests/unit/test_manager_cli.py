"""The manager's commands: repo handling, Lotus' layouts, clear errors without a manager."""

from __future__ import annotations

import socket
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sealagent.cli import auth as cli_auth
from sealagent.cli import main
from sealagent.cli.formatting import bar, go_duration
from sealagent.cli.sealing import format_jobs, format_worker
from sealagent.cli.sectors import commp_of_file, piece_size_for
from sealagent.cli.storage import format_path
from sealagent.errors import ConfigError
from sealagent.manager.config import load_config
from sealagent.manager.repo import MinerRepo, resolve_repo
from sealagent.manager.workers import WorkerReport
from sealagent.proofs.pieces import generate_piece_commitment
from sealagent.units import size_str
from sealagent.web.auth import verify_token


def test_repo_resolution_order() -> None:
    assert resolve_repo("/x", {"SEALAGENT_MINER_PATH": "/y"}) == Path("/x")
    assert resolve_repo(None, {"SEALAGENT_MINER_PATH": "/y"}) == Path("/y")
    assert resolve_repo(None, {}).name == ".sealagent-miner"


def test_miner_init_writes_the_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo_dir = tmp_path / "repo"
    assert main(["miner", "init", "--repo", str(repo_dir), "--actor", "1234",
                 "--sector-size", "8MiB", "--epoch-duration", "250ms", "--no-snark"]) == 0
    assert "Initialized manager repo" in capsys.readouterr().out
    repo = MinerRepo(repo_dir)
    config = load_config(repo.config_file)
    assert (config.miner.actor_id, config.miner.sector_size) == (1234, 8 << 20)
    assert config.sealing.epoch_duration == 0.25 and config.proving.snark is False
    assert stat.S_IMODE(repo.token_file.stat().st_mode) == 0o600
    assert verify_token(repo.secret(), repo.token()) == {"read", "write", "sign", "admin"}
    assert (repo_dir / "sectorstore.json").exists() and repo.storage.attached() == [repo_dir]
    assert main(["miner", "init", "--repo", str(repo_dir)]) == 2
    assert "already a manager repo" in capsys.readouterr().err


def test_commands_fail_clearly_without_a_repo_or_a_manager(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none")
    assert main(["sectors", "list", "--repo", missing]) == 2
    assert "sealagent miner init" in capsys.readouterr().err
    repo = MinerRepo(tmp_path / "repo")
    repo.init(load_config(tmp_path / "absent.toml"), local_storage=False)
    assert main(["sealing", "jobs", "--repo", str(repo.root)]) == 2
    assert "is `sealagent miner run` running?" in capsys.readouterr().err
    repo.write_api("/ip4/127.0.0.1/tcp/9/http")
    assert main(["sealing", "workers", "--repo", str(repo.root), "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    # the refused connection is the answer: the command does not wait out its timeout
    assert "all attempts to connect to 127.0.0.1:9 failed" in err
    assert "sealagent miner run" in err
    assert main(["miner", "run", "--repo", missing]) == 2


@pytest.mark.parametrize(("listen", "primary", "printed", "note"), [
    ("/ip4/0.0.0.0/tcp/2345/http", "10.1.2.3", "/ip4/10.1.2.3/tcp/2345/http",
     "sealagent: note: the manager listens on /ip4/0.0.0.0/tcp/2345/http; printing this "
     "host's address 10.1.2.3"),
    ("/ip6/::/tcp/2345/http", None, "/ip6/::1/tcp/2345/http",
     "sealagent: warning: the manager listens on /ip6/::/tcp/2345/http but this host has no "
     "address besides loopback; ::1 works only on this host"),
    ("/ip4/10.0.0.1/tcp/2345/http", "10.9.9.9", "/ip4/10.0.0.1/tcp/2345/http", ""),
])
def test_api_info_prints_an_address_other_hosts_can_dial(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        listen: str, primary: str | None, printed: str, note: str) -> None:
    repo = MinerRepo(tmp_path / "repo")
    repo.init(load_config(tmp_path / "absent.toml"), local_storage=False)
    repo.write_api(listen)
    assert repo.listen_info().multiaddr == listen
    dialed = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(repo.listen_info().host, "10.0.0.1")
    assert repo.api_info().host == dialed
    monkeypatch.setattr(cli_auth, "primary_address", lambda ipv6: primary)
    monkeypatch.setattr(cli_auth, "manager_call", lambda args, method, params: "tok")
    assert main(["auth", "api-info", "--perm", "admin", "--repo", str(repo.root)]) == 0
    out, err = capsys.readouterr()
    assert out == f"MINER_API_INFO=tok:{printed}\n"
    assert err.startswith(note) and bool(err) == bool(note)


def test_repo_lock_is_exclusive(tmp_path: Path) -> None:
    repo = MinerRepo(tmp_path)
    held = repo.lock()
    try:
        with pytest.raises(ConfigError, match="in use"):
            MinerRepo(tmp_path).lock()
    finally:
        held.close()
    MinerRepo(tmp_path).lock().close()


def test_piece_sizes_and_commp_of_a_short_file(tmp_path: Path) -> None:
    assert [piece_size_for(n) for n in (0, 1, 127, 128, 300, 2032)] == \
        [127, 127, 127, 254, 508, 2032]
    data = tmp_path / "d.bin"
    data.write_bytes(b"\x07" * 300)
    piece, size = commp_of_file(data)
    assert size == 508
    assert piece == generate_piece_commitment(b"\x07" * 300 + bytes(208), 508)
    with pytest.raises(ConfigError):
        commp_of_file(tmp_path / "missing")


def test_lotus_number_formats() -> None:
    assert [size_str(v) for v in (0, 2048, 184_792_064_000, 270_582_939_648)] == \
        ["0 B", "2 KiB", "172.1 GiB", "252 GiB"]
    assert [go_duration(s) for s in (0, 0.04, 41.33, 182.1, 11529.4)] == \
        ["0s", "0s", "41.3s", "3m2.1s", "3h12m9.4s"]
    assert bar(64, 0, 13) == "|" * 13 + " " * 51
    assert bar(10, 2, 3) == "|" * 32 + " " * 32
    assert bar(0, 0, 0) == " " * 64


def test_sealing_workers_layout() -> None:
    worker = {
        "worker_id": "5d7d3c2e-9a1b", "hostname": "pc1-node-01", "enabled": True,
        "resources": {"cpus": 64, "mem_physical": 256 << 30, "mem_used": 20 << 30,
                      "mem_swap": 0, "mem_swap_used": 0,
                      "gpus": [{"name": "NVIDIA GeForce RTX 3090", "memory": 0}]},
        "usage": {"cpu_use": 13, "mem_used_min": 150 << 30, "mem_used_max": 170 << 30,
                  "gpu_used": 0.0},
        "task_counts": {"seal/v0/precommit/1": 3, "seal/v0/addpiece": 1},
        "max_concurrent": {"seal/v0/precommit/1": 4, "seal/v0/addpiece": 0}}
    lines = format_worker(worker)
    assert lines[0] == "Worker 5d7d3c2e-9a1b, host pc1-node-01"
    assert lines[1] == "\tTASK: PC1(3/4) AP(1)"
    assert lines[2].startswith("\tCPU:  [" + "|" * 13 + " ")
    assert lines[2].endswith("] 13/64 core(s) in use")
    assert lines[3].endswith("] 58% 150 GiB/256 GiB")
    assert lines[4].endswith("] 66% 170 GiB/256 GiB")
    assert lines[5].endswith("] 0% 0.00/1 gpu(s) in use")
    assert lines[6] == "\tGPU: NVIDIA GeForce RTX 3090, not used"
    assert format_worker({**worker, "enabled": False})[0].endswith("(disabled)")
    shared = format_worker({**worker, "shares_cores_with": ["pc1-b"]})
    assert shared[1].startswith("\tWARNING: shares CPU cores with pc1-b on this machine")
    assert shared[2:] == lines[1:]


def test_agents_share_cores_only_on_one_machine_with_overlapping_cpus() -> None:
    def report(machine: str, cpus: list[int]) -> WorkerReport:
        return WorkerReport.from_json({
            "worker_id": "w", "name": "a", "url": "http://127.0.0.1:1", "tasks": [],
            "resources": {"cpus": len(cpus), "mem_physical": 1 << 30, "mem_used": 0,
                          "mem_swap": 0, "mem_swap_used": 0, "gpus": []},
            "machine": machine, "cpu_set": cpus})

    base = report("boot-1", [0, 1, 2, 3])
    assert base.shares_cores_with(report("boot-1", [3, 4]))
    assert not base.shares_cores_with(report("boot-1", [4, 5]))
    assert not base.shares_cores_with(report("boot-2", [0, 1]))
    old_agent = WorkerReport.from_json({**{k: v for k, v in base.__dict__.items()
                                           if k in ("worker_id", "name", "url")},
                                        "tasks": [], "resources": {
                                            "cpus": 1, "mem_physical": 1, "mem_used": 0,
                                            "mem_swap": 0, "mem_swap_used": 0, "gpus": []}})
    assert old_agent.machine == "" and not old_agent.shares_cores_with(old_agent)


def test_sealing_jobs_layout() -> None:
    jobs: list[Mapping[str, Any]] = [
        {"task_id": "t-9", "sector": 1038, "worker_id": "5d7d3c2e-1", "hostname": "h1",
         "short": "PC1", "state": "assigned", "window": 0, "elapsed": 182.1},
        {"task_id": "t-3", "sector": 1031, "worker_id": "5d7d3c2e-1", "hostname": "h1",
         "short": "PC1", "state": "running", "window": 0, "elapsed": 11529.4},
        {"task_id": "t-1", "sector": 1001, "worker_id": "8c3b9e10-2", "hostname": "h2",
         "short": "C2", "state": "ret-wait", "window": 0, "elapsed": 41.3},
    ]
    rows = [line.split() for line in format_jobs(jobs).splitlines()]
    assert rows[0] == ["ID", "Sector", "Worker", "Hostname", "Task", "State", "Time"]
    assert rows[1] == ["t-3", "1031", "5d7d3c2e", "h1", "PC1", "running", "3h12m9.4s"]
    assert rows[2] == ["t-9", "1038", "5d7d3c2e", "h1", "PC1", "assigned(1)", "3m2.1s"]
    assert rows[3] == ["t-1", "1001", "00000000", "h2", "C2", "ret-wait", "41.3s"]


def test_storage_list_layout() -> None:
    lines = format_path({"id": "p1", "urls": ["http://h:1/remote"], "weight": 10,
                         "can_seal": True, "can_store": False,
                         "stat": {"capacity": 100 << 30, "available": 25 << 30},
                         "healthy": False, "error": "stat failed", "sectors": 3,
                         "local": "/data"})
    assert lines[0] == "p1:"
    assert lines[1].endswith("] 75 GiB/100 GiB 75%")
    assert lines[2] == "\tSectors: 3; Health: unhealthy (stat failed)"
    assert lines[3:] == ["\tWeight: 10; Use: Seal", "\tLocal: /data", "\tURL: http://h:1/remote"]


@pytest.mark.parametrize(("content", "fragment"), [
    (b"x = [\n", "config.toml: Invalid value"),
    (b"[Bogus]\n", "unknown config section(s): Bogus"),
    (b"[Miner]\nActorID = \"x\"\n", "[Miner] ActorID: expected int"),
    (b"[Miner]\nColour = 1\n", "[Miner] unknown key(s): Colour"),
    (b"\xff\xfe\x00binary", "not a UTF-8 text file"),
    (b"[API]\nListenAddress = \"/ip4/192.0.2.1/tcp/1/http\"\n", "cannot listen on 192.0.2.1:1"),
    (b"[API]\nListenAddress = \"nonsense\"\n", "bad listen address 'nonsense'"),
])
def test_manager_start_up_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              content: bytes, fragment: str) -> None:
    repo = MinerRepo(tmp_path / "repo")
    repo.init(load_config(tmp_path / "absent.toml"), local_storage=False)
    repo.config_file.write_bytes(content)
    assert main(["miner", "run", "--repo", str(repo.root)]) == 1
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def run_on_a_taken_port(repo: MinerRepo) -> int:
    """``miner run`` on a port another socket listens on (it must fail: status 1)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        assert main(["miner", "run", "--repo", str(repo.root), "--listen",
                     f"127.0.0.1:{port}"]) == 1
    return port


def test_manager_start_up_with_its_port_taken_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = MinerRepo(tmp_path / "repo")
    repo.init(load_config(tmp_path / "absent.toml"), local_storage=False)
    port = run_on_a_taken_port(repo)
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and err.count("\n") == 1


def test_a_missing_config_is_named_and_an_empty_one_warned_of(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = MinerRepo(tmp_path / "repo")
    repo.init(load_config(tmp_path / "absent.toml"), local_storage=False)
    repo.config_file.unlink()
    assert main(["miner", "run", "--repo", str(repo.root)]) == 2
    err = capsys.readouterr().err
    assert "config.toml is missing" in err and "no manager repo" not in err
    repo.config_file.write_text("")
    run_on_a_taken_port(repo)
    assert "is empty; running on the defaults" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["empty", "/dev/zero", "directory"])
def test_add_piece_refuses_empty_and_special_files_up_front(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "directory").mkdir()
    target = name if name.startswith("/") else str(tmp_path / name)
    missing_repo = str(tmp_path / "no-repo")
    assert main(["sectors", "add-piece", target, "--repo", missing_repo]) == 2
    err = capsys.readouterr().err
    assert ("is empty" in err) if name == "empty" else ("not a regular file" in err)
    assert "miner init" not in err


def test_rpc_errors_carry_no_internal_codes() -> None:
    from sealagent.errors import RPCRemoteError
    error = RPCRemoteError(3, "no such sector 9", "ManagerError")
    assert str(error) == "no such sector 9" and error.code == 3
