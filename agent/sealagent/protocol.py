"""The manager ⇄ agent protocol: each message the two ends exchange, defined once.

The manager builds an :class:`Assignment` for every task it places in an agent's window
(``Sealing.RequestWindow``); the agent answers each attempt with a :class:`Report`
(``Sealing.ReportResult``), naming the sector files it left (:class:`SectorFile`).
Both are :class:`~sealagent.phases.Message` dataclasses: ``to_json()`` gives the wire
object and ``from_json()`` checks every field, raising
:class:`~sealagent.errors.InvalidInputError` that names the bad one.  Fields a newer
writer adds are skipped, so either end may be upgraded first.  ``docs/protocol.md``
describes the methods that carry them.
"""

from __future__ import annotations

import enum
import functools
import operator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final

from sealagent.codec import Message
from sealagent.errors import InvalidInputError
from sealagent.phase_chain import with_paths
from sealagent.phases import Phase, PhaseRequest, SectorPaths, SectorRef
from sealagent.task_kinds import TaskKind
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import SealTaskType


class ErrorCode(enum.IntEnum):
    """Lotus' error codes of a failed task; 100 and above are temporary."""

    UNKNOWN = 0
    TEMPORARY = 100
    """The step may succeed if retried (an input not reachable now)."""
    WORKER_RESTARTED = 101
    NO_SPACE = 102
    """No storage path has room yet."""


def is_temporary(code: int) -> bool:
    """True for codes ≥ 100: the sector retries the same step without counting a failure."""
    return code >= ErrorCode.TEMPORARY


READY_PHASES: Final = frozenset({Phase.COMMIT1, Phase.COMMIT2})
"""Phases that skip the preparing window (Lotus starts C1 and C2 directly)."""
COPYING_PHASES: Final = frozenset({Phase.UNSEAL})
"""Phases that fetch their inputs as copies, as Lotus' unseal does: the holder keeps its
copy (an unseal never takes a sector out of long-term storage), and the copy fetched is
one more, not the sector's copy of record."""


def _non_negative(value: int, where: str) -> None:
    if value < 0:
        raise InvalidInputError(f"{where}: must not be negative, got {value}")


@dataclass(frozen=True)
class WireMessage(Message):
    """Base of the protocol's messages: unknown fields are skipped."""

    ignore_unknown: ClassVar[bool] = True


@dataclass(frozen=True)
class SectorFile(WireMessage):
    """A sector file in a storage path: ``{"path_id", "file_type"}``."""

    path_id: str
    file_type: FileType


@dataclass(frozen=True)
class FileMove(WireMessage):
    """Sector files an agent moved while preparing a task (``Sealing.StorageDeclare``):
    the copies it now holds, and the holder's copies it had deleted."""

    declared: tuple[SectorFile, ...] = ()
    dropped: tuple[SectorFile, ...] = ()


@dataclass(frozen=True)
class FetchSource(WireMessage):
    """One file to download before the task runs: its type and a ``/remote`` URL."""

    file_type: FileType
    url: str


@dataclass(frozen=True)
class FetchDone(WireMessage):
    """A file an agent downloaded while preparing a task: from where, how many bytes,
    in how many seconds (the manager logs it in the sector's story and its metrics)."""

    file_type: FileType
    url: str
    size: int
    seconds: float


@dataclass(frozen=True)
class Assignment(WireMessage):
    """One task the manager hands an agent (see ``docs/protocol.md``).

    ``params`` is the phase's request without ``sector`` and ``paths``: the agent adds
    them, since only it knows where the files are on its host.  ``threads`` and ``gpu``
    are what the manager's scheduler granted.
    """

    task_id: str
    attempt: int
    task_type: TaskKind
    """The phase or storage job, named by its Lotus task type on the wire."""
    sector: SectorID
    proof: RegisteredSealProof
    priority: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    fetch: tuple[FetchSource, ...] = ()
    threads: int = 1
    gpu: float = 0.0

    def __post_init__(self) -> None:
        if not self.task_id:
            raise InvalidInputError("Assignment.task_id: must be a non-empty string")
        _non_negative(self.attempt, "Assignment.attempt")
        _non_negative(self.threads, "Assignment.threads")
        if self.gpu < 0:
            raise InvalidInputError(f"Assignment.gpu: must be a number ≥ 0, got {self.gpu}")

    @property
    def phase(self) -> TaskKind:
        """The phase (or storage job) to run."""
        return self.task_type

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
    def moves_inputs(self) -> bool:
        """True when fetching an input moves it here (the holder deletes its copy); False
        for the :data:`COPYING_PHASES`."""
        return self.phase not in COPYING_PHASES

    @property
    def skips_preparing(self) -> bool:
        """True for Commit1 and Commit2, which go straight to the executing window."""
        return self.phase in READY_PHASES

    def request(self, paths: SectorPaths) -> PhaseRequest:
        """The phase request: ``params`` plus the sector and, if the phase takes them,
        the local ``paths`` (InvalidInputError when ``params`` do not fit the phase, or
        the task is a storage job, which has no phase request)."""
        if not isinstance(self.phase, Phase):
            raise InvalidInputError(f"{self.phase.label} runs no phase")
        return with_paths(self.phase, {**self.params, "sector": self.sector_ref.to_json()},
                          paths)


@dataclass(frozen=True)
class Report(WireMessage):
    """The outcome of one task attempt; reports are idempotent by ``(task_id, attempt)``.

    ``result`` is the phase result's JSON when ``ok``; ``error`` and ``code`` say why
    not otherwise.  ``declared`` lists the sector files the task left on the agent's
    paths, ``dropped`` the copies it moved away from other paths, ``fetched`` the files
    it downloaded for the task.
    """

    task_id: str
    attempt: int
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    code: int = ErrorCode.UNKNOWN
    declared: tuple[SectorFile, ...] = ()
    dropped: tuple[SectorFile, ...] = ()
    fetched: tuple[FetchDone, ...] = ()

    def __post_init__(self) -> None:
        if not self.task_id:
            raise InvalidInputError("Report.task_id: must be a non-empty string")

    @property
    def key(self) -> str:
        """``<task_id>.<attempt>``."""
        return f"{self.task_id}.{self.attempt}"

    def with_files(self, declared: tuple[SectorFile, ...],
                   dropped: tuple[SectorFile, ...]) -> Report:
        """The same report, declaring ``declared`` and ``dropped``."""
        return replace(self, declared=declared, dropped=dropped)
