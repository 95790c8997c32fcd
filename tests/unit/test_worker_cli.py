"""``sealagent run`` flags, and how ``sealagent info`` prints an agent's status."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sealagent.cli import build_parser, main
from sealagent.cli.info import format_status, short_names
from sealagent.cli.run import build_config, chosen_tasks, manager_api
from sealagent.errors import ConfigError
from sealagent.vocab.tasks import TaskType
from sealagent.web.auth import create_token

TOKEN = create_token(b"k" * 32, ["read", "write", "sign", "admin"])
API = f"{TOKEN}:/ip4/10.0.0.5/tcp/2345/http"


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_task_flags_default_on_and_no_default() -> None:
    everything = chosen_tasks(parse())
    assert everything == frozenset({TaskType.ADD_PIECE, TaskType.PRECOMMIT1,
                                    TaskType.PRECOMMIT2, TaskType.COMMIT1,
                                    TaskType.COMMIT2, TaskType.UNSEAL, TaskType.FINALIZE,
                                    TaskType.FETCH})
    assert chosen_tasks(parse("--no-precommit2", "--no-commit")) == everything - {
        TaskType.PRECOMMIT2, TaskType.COMMIT2}
    assert chosen_tasks(parse("--no-default", "--precommit1")) == {
        TaskType.PRECOMMIT1, TaskType.COMMIT1, TaskType.FINALIZE, TaskType.FETCH}
    assert chosen_tasks(parse("--no-default")) == {TaskType.COMMIT1, TaskType.FINALIZE,
                                                   TaskType.FETCH}


def test_build_config_from_flags_and_environment(tmp_path: Path) -> None:
    args = parse("--worker-repo", str(tmp_path / "w"), "--name", "pc1-box", "--listen",
                 "127.0.0.1:0", "--parallel-fetch-limit", "3", "--no-swap",
                 "--no-local-storage", "--plugin", "multicore-sdr", "--plugin", "gpu-cupy")
    env = {"MINER_API_INFO": API, "PC1_2K_MAX_CONCURRENT": "2"}
    config = build_config(args, env)
    assert (config.api_info.host, config.api_info.port) == ("10.0.0.5", 2345)
    assert config.repo == tmp_path / "w" and config.name == "pc1-box"
    assert (config.listen, config.parallel_fetch_limit) == ("127.0.0.1:0", 3)
    assert config.no_swap and not config.local_storage
    assert config.plugins == ("multicore-sdr", "gpu-cupy")
    assert config.environ["PC1_2K_MAX_CONCURRENT"] == "2"


def test_repo_from_environment(tmp_path: Path) -> None:
    config = build_config(parse(), {"MINER_API_INFO": API,
                                    "SEALAGENT_WORKER_PATH": str(tmp_path)})
    assert config.repo == tmp_path


@pytest.mark.parametrize(("argv", "words"), [
    (["--parallel-fetch-limit", "0"], "parallel-fetch-limit"),
    (["--heartbeat", "0"], "--heartbeat"),
])
def test_bad_flags(argv: list[str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        build_config(parse(*argv), {"MINER_API_INFO": API})


def test_missing_manager_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MINER_API_INFO is not set") as missing:
        manager_api(str(tmp_path / "nothing"), {})
    assert "export $(sealagent auth api-info --perm admin)" in str(missing.value)
    with pytest.raises(ConfigError, match="MINER_API_INFO"):
        manager_api(None, {"MINER_API_INFO": "not-an-api-info"})


def test_run_without_a_manager_exits_with_usage_status(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    monkeypatch.delenv("MINER_API_INFO", raising=False)
    monkeypatch.setenv("SEALAGENT_MINER_PATH", str(tmp_path / "none"))
    assert main(["run", "--worker-repo", str(tmp_path / "w")]) == 2
    assert "MINER_API_INFO is not set" in capsys.readouterr().err


def test_info_without_an_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WORKER_API_INFO", raising=False)
    assert main(["info", "--worker-repo", str(tmp_path)]) == 2
    assert "is `sealagent run` running" in capsys.readouterr().err


def test_tasks_needs_one_type_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks", "enable"]) == 2
    assert "exactly one of TYPE or --all" in capsys.readouterr().err


def test_format_status() -> None:
    status = {
        "name": "pc1-box", "url": "http://10.0.0.7:3456", "worker_id": "w-1",
        "session": "s-1", "enabled": True,
        "tasks": ["seal/v0/precommit/1", "seal/v0/finalize", "seal/v0/addpiece"],
        "plugins": {"seal/v0/precommit/1": "multicore-sdr"},
        "skipped_plugins": {"gpu-cupy": "no CUDA GPU"},
        "resources": {"cpus": 64, "mem_physical": 256 << 30, "mem_used": 12 << 30,
                      "mem_swap": 0, "mem_swap_used": 0,
                      "gpus": [{"name": "NVIDIA GeForce RTX 3090", "memory": 24 << 30}]},
        "paths": [{"meta": {"ID": "p-1", "Weight": 10, "CanSeal": True, "CanStore": False},
                   "stat": {"capacity": 2 << 40, "available": 1 << 40}, "error": None}],
        "held": [{"task_id": "t-3", "attempt": 1, "task_type": "seal/v0/precommit/2",
                  "sector": 7, "stage": "preparing"}],
        "fetching": {"t-3": {"file_type": "cache", "done": 50, "total": 200}},
    }
    text = format_status(status)
    assert "Name: pc1-box" in text
    assert "CPUs: 64; GPUs: [NVIDIA GeForce RTX 3090]" in text
    assert "RAM: 12 GiB/256 GiB; Swap: 0 B/0 B" in text
    assert "Task types: FIN PC1 AP" in text
    assert "Backends: PC1=multicore-sdr" in text
    assert "plugin gpu-cupy unavailable: no CUDA GPU" in text
    assert "p-1:\n\tWeight: 10; Use: Seal\n\tSpace: 1 TiB available of 2 TiB" in text
    assert "t-3 (attempt 1) PC2 sector 7: preparing fetching cache 25%" in text


def test_short_names_sorts_by_urgency() -> None:
    assert short_names(["seal/v0/addpiece", "seal/v0/commit/1", "weird"]) == "C1 AP weird"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALAGENT_WORKER_PARALLEL_FETCH_LIMIT", " 7 ")
    monkeypatch.setenv("SEALAGENT_WORKER_NO_SWAP", "On")
    config = build_config(parse(), {"MINER_API_INFO": API})
    assert config.parallel_fetch_limit == 7 and config.no_swap
    assert build_config(parse("--parallel-fetch-limit", "2"),
                        {"MINER_API_INFO": API}).parallel_fetch_limit == 2


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("SEALAGENT_WORKER_PARALLEL_FETCH_LIMIT", "ten", "expected an integer ≥ 1"),
    ("SEALAGENT_WORKER_PARALLEL_FETCH_LIMIT", "0", "expected an integer ≥ 1"),
    ("SEALAGENT_WORKER_NO_SWAP", "maybe", "expected 1, true"),
    ("SEALAGENT_WORKER_NO_DEFAULT", "2", "expected 1, true"),
])
def test_bad_environment_values_name_the_variable(
        name: str, value: str, expected: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(name, value)
    args = parse()  # other commands still work: the parser builds
    with pytest.raises(ConfigError, match=f"{name}={value!r}: {expected}"):
        build_config(args, {"MINER_API_INFO": API})
    monkeypatch.setenv("MINER_API_INFO", API)
    assert main(["run"]) == 2
    assert f"sealagent: error: {name}={value!r}" in capsys.readouterr().err
    assert main(["resources", "--default"]) == 0


def test_a_tmpdir_that_cannot_be_used_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TMPDIR=/nonexistent is not a writable directory"):
        build_config(parse(), {"MINER_API_INFO": API, "TMPDIR": "/nonexistent"})
    assert build_config(parse(), {"MINER_API_INFO": API, "TMPDIR": str(tmp_path)})


def test_an_unknown_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        parse("--log-level", "bogus")
    assert usage.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
