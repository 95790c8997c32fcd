"""A task as the manager hands it to an agent (the protocol's *Assignment*).

::

    {"task_id": "t-17", "attempt": 1, "task_type": "seal/v0/precommit/2",
     "sector": {"miner": 1000, "number": 3}, "proof": 8, "priority": 0,
     "params": {"pc1_output": "..."},
     "fetch": [{"file_type": "cache", "url": "http://10.0.0.7:3456/remote/cache/s-t01000-3"}],
     "threads": 1, "gpu": 0.0}

``params`` is the phase's request (:mod:`sealagent.phases`) without ``sector`` and
``paths``: the agent adds the sector and the paths of the files on this host, since only
it knows where they are.  ``threads`` and ``gpu`` are what the manager's scheduler granted.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sealagent.errors import SchedulerError, UnknownProofError
from sealagent.phases import Phase, PhaseRequest, SectorPaths, SectorRef
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import SealTaskType

READY_PHASES: Final = frozenset({Phase.COMMIT1, Phase.COMMIT2})
"""Phases that skip the preparing window (Lotus starts C1 and C2 directly)."""


@dataclass(frozen=True)
class FetchSource:
    """One file to download before the task runs: its type and a ``/remote`` URL."""

    file_type: FileType
    url: str

    def to_json(self) -> dict[str, str]:
        """The protocol object."""
        return {"file_type": self.file_type.dir_name, "url": self.url}


@dataclass(frozen=True)
class Assignment:
    """One task given to this agent."""

    task_id: str
    attempt: int
    phase: Phase
    sector: SectorID
    proof: RegisteredSealProof
    priority: int
    params: Mapping[str, Any]
    fetch: tuple[FetchSource, ...] = ()
    threads: int = 1
    gpu: float = 0.0

    @property
    def key(self) -> str:
        """``<task_id>.<attempt>``: names this attempt in logs and on disk."""
        return f"{self.task_id}.{self.attempt}"

    @property
    def sector_ref(self) -> SectorRef:
        """The sector as the phase messages name it."""
        return SectorRef(self.sector.miner, self.sector.number, self.proof.name)

    @property
    def seal_task_type(self) -> SealTaskType:
        """The ``(proof, task type)`` pair that keys resource limits."""
        return SealTaskType(self.proof, self.phase.task_type)

    @property
    def fetched(self) -> FileType:
        """The sector files the manager asks to download before the phase runs."""
        return functools.reduce(operator.or_, (f.file_type for f in self.fetch), FileType(0))

    @property
    def skips_preparing(self) -> bool:
        """True for Commit1 and Commit2, which go straight to the executing window."""
        return self.phase in READY_PHASES

    def request(self, paths: SectorPaths) -> PhaseRequest:
        """The phase request: ``params`` plus the sector and, if the phase takes them,
        the local ``paths`` (InvalidInputError when ``params`` do not fit the phase)."""
        data = dict(self.params)
        data["sector"] = self.sector_ref.to_json()
        request_type = self.phase.request_type
        if "paths" in {f.name for f in dataclasses.fields(request_type)}:
            data["paths"] = paths.to_json()
        return request_type.from_json(data)

    def to_json(self) -> dict[str, Any]:
        """The protocol object (what :meth:`from_json` reads back)."""
        return {"task_id": self.task_id, "attempt": self.attempt,
                "task_type": self.phase.task_type,
                "sector": {"miner": self.sector.miner, "number": self.sector.number},
                "proof": int(self.proof), "priority": self.priority,
                "params": dict(self.params), "fetch": [f.to_json() for f in self.fetch],
                "threads": self.threads, "gpu": self.gpu}

    @classmethod
    def from_json(cls, data: Any) -> Assignment:
        """Parse and check an assignment; SchedulerError says what is malformed."""
        if not isinstance(data, Mapping):
            raise SchedulerError(f"malformed assignment: expected an object, got {data!r}")
        try:
            return _parse(data)
        except (KeyError, TypeError, ValueError) as exc:
            task = data.get("task_id", "?")
            raise SchedulerError(f"malformed assignment {task}: {exc!r}") from None


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def _parse(data: Mapping[str, Any]) -> Assignment:
    task_id = data["task_id"]
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("task_id must be a non-empty string")
    try:
        phase = Phase(data["task_type"])
    except ValueError:
        raise ValueError(f"task type {data['task_type']!r} is not a phase this agent "
                         "runs") from None
    sector = data["sector"]
    if not isinstance(sector, Mapping):
        raise ValueError("sector must be an object {miner, number}")
    try:
        proof = resolve_proof(data["proof"])
    except UnknownProofError as exc:
        raise ValueError(str(exc)) from None
    params = data.get("params")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise ValueError("params must be an object")
    fetch = tuple(FetchSource(FileType.parse(str(f["file_type"])), str(f["url"]))
                  for f in data.get("fetch") or [])
    gpu = data.get("gpu", 0.0)
    if isinstance(gpu, bool) or not isinstance(gpu, int | float) or gpu < 0:
        raise ValueError(f"gpu must be a number ≥ 0, got {gpu!r}")
    priority = data.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"priority must be an integer, got {priority!r}")
    return Assignment(task_id=task_id, attempt=_int(data, "attempt"), phase=phase,
                      sector=SectorID(_int(sector, "miner"), _int(sector, "number")),
                      proof=proof, priority=priority, params=dict(params), fetch=fetch,
                      threads=_int(data, "threads", 1), gpu=float(gpu))
