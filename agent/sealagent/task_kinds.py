"""Task kinds: the sealing phases plus the storage jobs no backend runs.

A task the manager queues is either a :class:`~sealagent.phases.Phase` (a backend's hook
runs it in a child process) or a :class:`StorageJob`, which the agent does itself with
its storage paths: today the move of a finalized sector's sealed file and cache to
long-term storage (Lotus' ``MoveStorage``, task type ``seal/v0/fetch``).  Both expose the
same names (``task_type``, ``label``, ``short``, ``reads``, ``creates``), so queues,
listings and metrics treat them alike; :func:`parse_kind` reads either from its task
type string.  Storage jobs are not part of the plugin contract.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from sealagent.codec import Message
from sealagent.errors import InvalidInputError
from sealagent.phases import NO_FILES, Phase
from sealagent.units import size_str
from sealagent.vocab.sectors import FileType
from sealagent.vocab.tasks import TaskType

STORED_FILES: Final = FileType.SEALED | FileType.CACHE
"""What long-term storage must keep of a finalized sector: the sealed file and the cache."""
MOVED_FILES: Final = STORED_FILES | FileType.UNSEALED
"""What the move to long-term storage takes along: the unsealed copy too, where one was
kept (Lotus moves it with the rest, so that unsealing reads it there)."""


class StorageJob(enum.Enum):
    """A task the agent does with its storage paths, valued by its Lotus task type."""

    MOVE_STORAGE = TaskType.FETCH

    @property
    def task_type(self) -> TaskType:
        """The Lotus task type (``seal/v0/fetch``)."""
        return self.value

    @property
    def label(self) -> str:
        """The human name (``MoveStorage``)."""
        return "MoveStorage"

    @property
    def short(self) -> str:
        """The short name Lotus prints in ``sealing jobs`` (``GET``)."""
        return self.value.short

    @property
    def reads(self) -> FileType:
        """The sector files the job needs: they must exist to be moved."""
        return STORED_FILES

    @property
    def moves(self) -> FileType:
        """The sector files the job takes along where they exist."""
        return MOVED_FILES

    @property
    def creates(self) -> FileType:
        """A move creates no new file types."""
        return NO_FILES

    @property
    def writes(self) -> FileType:
        """The moved files: the copies the move leaves are the ones of record."""
        return MOVED_FILES


TaskKind = Phase | StorageJob
"""What a task runs: a sealing phase or a storage job."""

STORAGE_TASK_TYPES: Final = frozenset(job.task_type for job in StorageJob)
"""Task types an agent runs without a backend."""


def parse_kind(task_type: str) -> TaskKind:
    """The phase or storage job named by ``task_type`` (``seal/v0/fetch``).

    :raises InvalidInputError: no task kind has this task type.
    """
    kinds: tuple[TaskKind, ...] = (*Phase, *StorageJob)
    for kind in kinds:
        if kind.task_type == task_type:
            return kind
    raise InvalidInputError(f"unknown task type {task_type!r}")


@dataclass(frozen=True)
class MoveResult(Message):
    """What a :attr:`StorageJob.MOVE_STORAGE` task did: the files it moved, the store path
    they went to (its id and directory on the agent), the bytes moved and where they came
    from (local files renamed or copied, ``/remote`` URLs fetched)."""

    file_types: tuple[FileType, ...]
    """Each file type moved (one type each, as the wire names them)."""
    path_id: str
    root: str
    size: int
    sources: tuple[str, ...] = ()

    def describe(self) -> str:
        """``sealed, cache moved to long-term storage path <id> (<root>) from <sources>
        (2.0 KiB)``, as the sector's log tells it."""
        origin = ", ".join(self.sources) if self.sources else "nowhere (already there)"
        return (f"{', '.join(t.dir_name for t in self.file_types)} moved to long-term storage path "
                f"{self.path_id} ({self.root}) from {origin} ({size_str(self.size)})")
