"""The manager's ``config.toml``.

Section and key names follow ``lotus-miner``'s config where Lotus has them
(``[Storage] AllowPreCommit1``, ``ParallelFetchLimit``, ``Assigner`` ...).  The devnet
clock and the retry policy live in ``[Sealing]``.  Durations are Go-style strings
(``"250ms"``, ``"5s"``, ``"1m"``, ``"1h30m"``) or plain numbers of seconds.

Unknown sections or keys are refused, so a typo never silently keeps a default.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from sealagent.errors import ConfigError, UnknownProofError
from sealagent.sched.assigners import Assigner
from sealagent.sched.resources import ResourceFiltering
from sealagent.vocab.registry import parse_sector_size, size_name

CONFIG_FILE: Final = "config.toml"

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3,
                        "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(value: str | float | int) -> float:
    """Parse ``"1m30s"``, ``"250ms"`` or a number of seconds into seconds (≥ 0)."""
    if isinstance(value, bool):
        raise ConfigError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            raise ConfigError(f"not a duration: {value!r} (use e.g. \"5s\", \"1m\", \"250ms\")")
    if seconds < 0:
        raise ConfigError(f"a duration cannot be negative: {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Format seconds the way :func:`parse_duration` reads them back (``"1m30s"``)."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000, 3):g}ms"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    secs_f = secs + (seconds - whole)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    if secs_f or not text:
        text += f"{secs_f:g}s"
    return text


def _key(name: str, kind: str = "") -> Any:
    """Field metadata: the TOML key and how to convert it (``duration`` or plain)."""
    return {"toml": name, "kind": kind}


@dataclass(frozen=True)
class APIConfig:
    """``[API]``: where the manager listens."""

    listen_address: str = field(default="/ip4/127.0.0.1/tcp/2345/http",
                                metadata=_key("ListenAddress"))


@dataclass(frozen=True)
class MinerConfig:
    """``[Miner]``: the miner actor and the sectors it seals."""

    actor_id: int = field(default=1000, metadata=_key("ActorID"))
    sector_size: int = field(default=2048, metadata=_key("SectorSize", "size"))


@dataclass(frozen=True)
class StorageConfig:
    """``[Storage]``: Lotus' SealerConfig switches for the co-located agent and scheduler.

    ``LocalWorker = false`` runs no co-located agent (all sealing on separate agents);
    ``SectorAffinity = true`` (off by default, as in Lotus, which moves sealing data
    between hosts) keeps a sector's sealing files on the agent that has them.
    """

    allow_add_piece: bool = field(default=True, metadata=_key("AllowAddPiece"))
    allow_precommit1: bool = field(default=True, metadata=_key("AllowPreCommit1"))
    allow_precommit2: bool = field(default=True, metadata=_key("AllowPreCommit2"))
    allow_commit: bool = field(default=True, metadata=_key("AllowCommit"))
    allow_unseal: bool = field(default=True, metadata=_key("AllowUnseal"))
    parallel_fetch_limit: int = field(default=10, metadata=_key("ParallelFetchLimit"))
    assigner: str = field(default="utilization", metadata=_key("Assigner"))
    disallow_remote_finalize: bool = field(default=False,
                                           metadata=_key("DisallowRemoteFinalize"))
    resource_filtering: str = field(default="hardware", metadata=_key("ResourceFiltering"))
    sector_affinity: bool = field(default=False, metadata=_key("SectorAffinity"))
    local_worker: bool = field(default=True, metadata=_key("LocalWorker"))
    local_worker_name: str = field(default="", metadata=_key("LocalWorkerName"))


@dataclass(frozen=True)
class ProvingConfig:
    """``[Proving]``: ``Snark = false`` verifies C1's vanilla proofs instead of running C2."""

    snark: bool = field(default=True, metadata=_key("Snark"))


@dataclass(frozen=True)
class SealingConfig:
    """``[Sealing]``: the devnet epoch clock, chain delays and the retry policy."""

    epoch_duration: float = field(default=4.0, metadata=_key("EpochDuration", "duration"))
    seal_randomness_lookback: int = field(default=0,
                                          metadata=_key("SealRandomnessLookback"))
    ticket_expiry_epochs: int = field(default=3780, metadata=_key("TicketExpiryEpochs"))
    precommit_challenge_delay: int = field(default=10,
                                           metadata=_key("PreCommitChallengeDelay"))
    seed_confidence: int = field(default=6, metadata=_key("InteractivePoRepConfidence"))
    min_retry_time: float = field(default=60.0, metadata=_key("MinRetryTime", "duration"))
    soft_error_retry_wait: float = field(default=5.0,
                                         metadata=_key("SoftErrorRetryWait", "duration"))
    max_soft_errors: int = field(default=10, metadata=_key("MaxSoftErrors"))
    max_add_piece_retries: int = field(default=3, metadata=_key("MaxAddPieceRetries"))
    max_precommit1_retries: int = field(default=3, metadata=_key("MaxPreCommit1Retries"))
    max_precommit2_retries: int = field(default=3, metadata=_key("MaxPreCommit2Retries"))
    max_compute_proof_retries: int = field(default=2,
                                           metadata=_key("MaxComputeProofRetries"))
    worker_timeout: float = field(default=30.0, metadata=_key("WorkerTimeout", "duration"))
    reattach_timeout: float = field(default=300.0,
                                    metadata=_key("ReattachTimeout", "duration"))
    window_timeout: float = field(default=60.0, metadata=_key("WindowTimeout", "duration"))
    """Longest a ``Sealing.RequestWindow`` long-poll is held before it answers empty."""


@dataclass(frozen=True)
class ManagerConfig:
    """The whole ``config.toml``."""

    api: APIConfig = field(default_factory=APIConfig, metadata=_key("API"))
    miner: MinerConfig = field(default_factory=MinerConfig, metadata=_key("Miner"))
    storage: StorageConfig = field(default_factory=StorageConfig, metadata=_key("Storage"))
    proving: ProvingConfig = field(default_factory=ProvingConfig, metadata=_key("Proving"))
    sealing: SealingConfig = field(default_factory=SealingConfig, metadata=_key("Sealing"))

    def validate(self) -> ManagerConfig:
        """Check values that TOML types alone do not constrain; returns ``self``."""
        for key, parse, value in (
                ("Assigner", Assigner.parse, self.storage.assigner),
                ("ResourceFiltering", ResourceFiltering.parse, self.storage.resource_filtering)):
            try:
                parse(value)
            except ConfigError as exc:
                raise ConfigError(f"[Storage] {key}: {exc}") from None
        if self.storage.parallel_fetch_limit < 1:
            raise ConfigError("[Storage] ParallelFetchLimit must be at least 1")
        if self.miner.actor_id < 0:
            raise ConfigError("[Miner] ActorID cannot be negative")
        if self.sealing.epoch_duration <= 0:
            raise ConfigError("[Sealing] EpochDuration must be positive")
        for f in fields(SealingConfig):
            value = getattr(self.sealing, f.name)
            if isinstance(value, int) and value < 0:
                raise ConfigError(f"[Sealing] {f.metadata['toml']} cannot be negative")
        return self


def _convert(section: str, key: str, kind: str, default: Any, value: Any) -> Any:
    """Convert one TOML value to the type of its field, or raise :class:`ConfigError`."""
    where = f"[{section}] {key}"
    if kind == "duration":
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return parse_duration(value)
        raise ConfigError(f"{where}: expected a duration, got {value!r}")
    if kind == "size":
        try:
            return parse_sector_size(value)
        except UnknownProofError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    expected = type(default)
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if expected is not int and isinstance(value, expected):
        return value
    raise ConfigError(f"{where}: expected {expected.__name__}, got {value!r}")


def _load_section(section: str, cls: type[Any], table: Any) -> Any:
    """Build one section dataclass from its TOML table."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}] must be a table")
    default = cls()
    by_key = {f.metadata["toml"]: f for f in fields(cls)}
    unknown = sorted(set(table) - set(by_key))
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s): {', '.join(unknown)}; "
                          f"known: {', '.join(by_key)}")
    values = {
        by_key[key].name: _convert(section, key, by_key[key].metadata["kind"],
                                   getattr(default, by_key[key].name), value)
        for key, value in table.items()
    }
    return replace(default, **values)


def config_from_dict(data: dict[str, Any]) -> ManagerConfig:
    """Build and validate a :class:`ManagerConfig` from parsed TOML."""
    by_section = {f.metadata["toml"]: f for f in fields(ManagerConfig)}
    unknown = sorted(set(data) - set(by_section))
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(unknown)}; "
                          f"known: {', '.join(by_section)}")
    sections: dict[str, Any] = {}
    for name, f in by_section.items():
        if name in data:
            cls = type(getattr(ManagerConfig(), f.name))
            sections[f.name] = _load_section(name, cls, data[name])
    return ManagerConfig(**sections).validate()


def load_config(path: Path) -> ManagerConfig:
    """Read ``config.toml``; a missing file means all defaults."""
    if not path.exists():
        return ManagerConfig().validate()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}: "
                          f"{exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _toml_value(kind: str, value: Any) -> str:
    """Render one value as TOML."""
    if kind == "duration":
        return f'"{format_duration(value)}"'
    if kind == "size":
        return f'"{size_name(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def render_config(config: ManagerConfig) -> str:
    """Render a config as a TOML document that :func:`load_config` reads back equal."""
    lines: list[str] = []
    for section in fields(ManagerConfig):
        lines.append(f"[{section.metadata['toml']}]")
        value = getattr(config, section.name)
        for f in fields(value):
            rendered = _toml_value(f.metadata["kind"], getattr(value, f.name))
            lines.append(f"  {f.metadata['toml']} = {rendered}")
        lines.append("")
    return "\n".join(lines)
