"""What an agent says about itself (the protocol's WorkerInfo) and its session.

:class:`WorkerReport` parses and validates a WorkerInfo object; anything malformed is a
:class:`~sealagent.errors.ManagerError` that names the field, so a bad agent gets a clear
JSON-RPC error instead of breaking the manager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sealagent.errors import ConfigError, ManagerError, SchedulerError, StorageError
from sealagent.sched.resources import WorkerResources
from sealagent.storage.meta import FsStat, PathMeta
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import TaskType, parse_task_type

_WORKER_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


@dataclass(frozen=True)
class PathReport:
    """One local storage path of an agent: its ``sectorstore.json`` and its space."""

    meta: PathMeta
    stat: FsStat | None
    error: str | None = None
    sectors: Mapping[SectorID, FileType] | None = None
    """Every sector file in the path, when the agent declares them (as it connects)."""


@dataclass(frozen=True)
class WorkerReport:
    """A parsed WorkerInfo."""

    worker_id: str
    """The agent's own stable identity (kept in its repo); its name is only a label."""
    name: str
    hostname: str
    url: str
    tasks: frozenset[TaskType]
    resources: WorkerResources
    paths: tuple[PathReport, ...] = ()
    plugins: Mapping[str, str] = field(default_factory=dict)
    running: frozenset[tuple[str, int]] = frozenset()
    """``(task_id, attempt)`` of every task the agent holds."""
    machine: str = ""
    """Which kernel the agent runs on (its boot id): agents sharing one share its cores."""
    cpu_set: frozenset[int] = frozenset()
    """The CPUs the agent may run on (its affinity mask)."""

    def shares_cores_with(self, other: WorkerReport) -> bool:
        """True when both run on one machine and may use some of the same CPUs."""
        return bool(self.machine) and self.machine == other.machine and bool(
            self.cpu_set & other.cpu_set)

    @property
    def remote_url(self) -> str:
        """Where the agent serves its sector files."""
        return self.url.rstrip("/") + "/remote"

    @classmethod
    def from_json(cls, data: Any) -> WorkerReport:
        """Parse a WorkerInfo object.

        :raises ManagerError: a field is missing or malformed.
        """
        if not isinstance(data, Mapping):
            raise ManagerError("worker info must be a JSON object")
        try:
            return cls(
                worker_id=_worker_id(data),
                name=_text(data, "name"),
                hostname=str(data.get("hostname") or data["name"]),
                url=_url(data),
                tasks=frozenset(parse_task_type(t) for t in _list(data, "tasks")),
                resources=WorkerResources.from_json(data.get("resources")),
                paths=tuple(_path(p) for p in _list(data, "paths")),
                plugins=_plugins(data.get("plugins") or {}),
                running=frozenset(_running(r) for r in _list(data, "running")),
                machine=str(data.get("machine") or ""),
                cpu_set=frozenset(int(c) for c in data.get("cpu_set") or ()),
            )
        except (ConfigError, SchedulerError, StorageError) as exc:
            raise ManagerError(f"worker info: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ManagerError(f"worker info: malformed ({exc!r})") from None


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ManagerError(f"worker info: {key!r} must be a non-empty string")
    return value.strip()


def _worker_id(data: Mapping[str, Any]) -> str:
    value = data.get("worker_id")
    if not isinstance(value, str) or not _WORKER_ID.fullmatch(value):
        raise ManagerError("worker info: 'worker_id' must be the agent's identity (1 to 64 "
                           f"letters, digits or dashes), got {str(value)[:80]!r}")
    return value


def _url(data: Mapping[str, Any]) -> str:
    url = data.get("url", "")
    if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
        raise ManagerError(f"worker info: 'url' must be an http(s) URL, got {url!r}")
    return url


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ManagerError(f"worker info: {key!r} must be a list")
    return value


def _path(item: Any) -> PathReport:
    if not isinstance(item, Mapping):
        raise ManagerError("worker info: each path must be an object with 'meta' and 'stat'")
    stat = item.get("stat")
    error = item.get("error")
    held = item.get("sectors")
    return PathReport(PathMeta.from_json(item.get("meta"), "worker path"),
                      None if stat is None else FsStat.from_json(stat),
                      None if error is None else str(error),
                      None if held is None else _held_sectors(held))


def _held_sectors(value: Any) -> dict[SectorID, FileType]:
    """``{"s-t01000-3": ["sealed", "cache"]}`` parsed."""
    if not isinstance(value, Mapping):
        raise ManagerError("worker info: a path's 'sectors' must map sector names to lists "
                           "of file types")
    held: dict[SectorID, FileType] = {}
    for name, types in value.items():
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise ManagerError(f"worker info: the file types of {str(name)[:80]!r} must be "
                               "a list of names")
        found = FileType(0)
        for type_name in types:
            found |= FileType.parse(type_name)
        held[SectorID.parse(name)] = found
    return held


def _plugins(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ManagerError("worker info: 'plugins' must map names to strings")
    return dict(value)


def _running(item: Any) -> tuple[str, int]:
    if not isinstance(item, Mapping):
        raise ManagerError("worker info: each running entry must be {task_id, attempt}")
    task_id, attempt = item.get("task_id"), item.get("attempt")
    if not isinstance(task_id, str) or isinstance(attempt, bool) or not isinstance(attempt, int):
        raise ManagerError("worker info: running entries need a string task_id and an "
                           "integer attempt")
    return task_id, attempt
