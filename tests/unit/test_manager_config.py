"""The manager's config.toml: Lotus key names, durations, validation, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealagent.errors import ConfigError
from sealagent.manager.config import (
    ManagerConfig,
    format_duration,
    load_config,
    parse_duration,
    render_config,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("5s", 5.0), ("1m", 60.0), ("1h30m", 5400.0), ("250ms", 0.25), ("1.5s", 1.5),
    ("2m3s", 123.0), (7, 7.0), (0.5, 0.5),
])
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "s", "5x", "1m junk", "-5s", True, -1])
def test_parse_duration_refuses_garbage(bad: str | float) -> None:
    with pytest.raises(ConfigError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds", [0.0, 0.05, 1.0, 59.5, 60.0, 3600.0, 5430.25])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_defaults_follow_lotus() -> None:
    config = load_config(Path("/nonexistent/config.toml"))
    assert config.storage.allow_precommit1 and config.storage.allow_commit
    assert config.storage.parallel_fetch_limit == 10
    assert config.storage.assigner == "utilization"
    assert config.storage.resource_filtering == "hardware"
    assert not config.storage.disallow_remote_finalize
    assert config.storage.sector_affinity is False
    assert config.proving.snark is True
    assert config.sealing.min_retry_time == 60.0
    assert config.sealing.soft_error_retry_wait == 5.0


def test_lotus_keys_are_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("""
[Storage]
  AllowPreCommit1 = false
  AllowCommit = false
  ParallelFetchLimit = 3
  Assigner = "spread"
  DisallowRemoteFinalize = true
  SectorAffinity = true
[Proving]
  Snark = false
[Sealing]
  EpochDuration = "100ms"
  PreCommitChallengeDelay = 2
  MinRetryTime = "2s"
[Miner]
  ActorID = 1234
  SectorSize = "8MiB"
""")
    config = load_config(path)
    assert not config.storage.allow_precommit1 and not config.storage.allow_commit
    assert config.storage.allow_precommit2
    assert (config.storage.parallel_fetch_limit, config.storage.assigner) == (3, "spread")
    assert config.storage.disallow_remote_finalize and config.storage.sector_affinity
    assert config.proving.snark is False
    assert config.sealing.epoch_duration == pytest.approx(0.1)
    assert config.sealing.precommit_challenge_delay == 2
    assert config.sealing.min_retry_time == 2.0
    assert (config.miner.actor_id, config.miner.sector_size) == (1234, 8 << 20)


@pytest.mark.parametrize(("text", "message"), [
    ("[Storage]\nAllowPrecommit1 = false\n", "unknown key"),
    ("[Storeage]\n", "unknown config section"),
    ("[Storage]\nAllowCommit = 1\n", "expected bool"),
    ("[Storage]\nParallelFetchLimit = true\n", "expected int"),
    ("[Storage]\nAssigner = \"fastest\"\n", "unknown assigner"),
    ("[Storage]\nResourceFiltering = \"none\"\n", "ResourceFiltering"),
    ("[Storage]\nParallelFetchLimit = 0\n", "at least 1"),
    ("[Sealing]\nMinRetryTime = \"soon\"\n", "not a duration"),
    ("[Sealing]\nEpochDuration = 0\n", "must be positive"),
    ("[Sealing]\nMaxPreCommit1Retries = -1\n", "cannot be negative"),
    ("[Miner]\nSectorSize = \"3KiB\"\n", "SectorSize"),
    ("[Storage\n", "config.toml"),
    ("Storage = 3\n", "must be a table"),
])
def test_bad_configs_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_render_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[Storage]\nAssigner = \"spread\"\n[Sealing]\nEpochDuration = \"50ms\"\n")
    config = load_config(path)
    path.write_text(render_config(config))
    assert load_config(path) == config
    assert "AllowPreCommit2 = true" in render_config(ManagerConfig())
