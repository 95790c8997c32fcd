"""How an agent runs: :class:`AgentConfig`, from ``sealagent run`` or the manager."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sealagent.errors import ConfigError
from sealagent.sched.windows import SCHED_WINDOWS
from sealagent.vocab.tasks import TaskType
from sealagent.web.auth import APIInfo
from sealagent.worker.windows import DEFAULT_WAIT

ALWAYS_ON: Final = frozenset({TaskType.COMMIT1, TaskType.FINALIZE, TaskType.FETCH})
"""Task types every sealing agent takes (Lotus cannot toggle C1, FIN and GET either)."""
OPTIONAL_TASKS: Final = frozenset({TaskType.ADD_PIECE, TaskType.PRECOMMIT1,
                                   TaskType.PRECOMMIT2, TaskType.COMMIT2,
                                   TaskType.UNSEAL})
"""Task types an operator switches with ``--addpiece``... and ``tasks enable|disable``."""

DEFAULT_HEARTBEAT: Final = 5.0
DEFAULT_STOP_GRACE: Final = 30.0


@dataclass(frozen=True)
class AgentConfig:
    """How to run an agent (``sealagent run`` flags, or the manager's built-in agent)."""

    api_info: APIInfo
    """The manager's API and the admin token (``MINER_API_INFO``)."""
    repo: Path
    name: str = field(default_factory=socket.gethostname)
    """Shown as the host in ``sealing workers``; the manager keys the worker id on it."""
    task_types: frozenset[TaskType] = ALWAYS_ON | OPTIONAL_TASKS
    listen: str | None = "0.0.0.0:3456"
    """Where to serve the API and ``/remote``; None serves nothing (built-in agent)."""
    url: str | None = None
    """The URL peers reach this agent at; default: derived from ``listen``."""
    storage_repo: Path | None = None
    """Whose ``storage.json`` lists the paths (default: ``repo``)."""
    local_storage: bool = True
    """Make the repo a sealing path on first start (``--no-local-storage`` clears it)."""
    parallel_fetch_limit: int = 5
    no_swap: bool = False
    plugins: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    """Resource overrides and GPU visibility are read from here."""
    ignore_resources: bool = False
    phase_env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for every phase's child process."""
    heartbeat_interval: float = DEFAULT_HEARTBEAT
    window_wait: float = DEFAULT_WAIT
    windows: int = SCHED_WINDOWS
    stop_grace: float = DEFAULT_STOP_GRACE
    """Seconds running phases get to finish when the agent stops."""

    def __post_init__(self) -> None:
        """Refuse values the agent cannot work with."""
        if self.parallel_fetch_limit < 1:
            raise ConfigError("--parallel-fetch-limit must be at least 1")
        if not self.name.strip():
            raise ConfigError("the agent's name cannot be empty")
        if self.listen is None and self.url is None:
            raise ConfigError("an agent that does not listen needs the URL serving its files")
        for value, what in ((self.heartbeat_interval, "heartbeat interval"),
                            (self.window_wait, "window wait")):
            if value <= 0:
                raise ConfigError(f"the {what} must be positive")
        if self.stop_grace < 0 or self.windows < 1:
            raise ConfigError("the stop grace cannot be negative and an agent needs a window")
