"""Task types: Lotus' names, short names, priority order and worker kinds.

The order table is Lotus' ``sealtasks`` order: a lower value is more urgent, and the
negative values form the *high-priority tier* (PoSt, finalize, download, fetch) that is
always scheduled before any other task whatever the sector priority.  ``FRU`` has no
entry in Lotus' map and therefore reads as 0 (ordinary tier, before Unseal).
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

from sealagent.errors import SchedulerError
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof


class TaskType(enum.StrEnum):
    """A sealing or proving task type, valued with Lotus' task type string."""

    DATA_CID = "seal/v0/datacid"
    ADD_PIECE = "seal/v0/addpiece"
    PRECOMMIT1 = "seal/v0/precommit/1"
    PRECOMMIT2 = "seal/v0/precommit/2"
    COMMIT1 = "seal/v0/commit/1"
    COMMIT2 = "seal/v0/commit/2"
    FINALIZE = "seal/v0/finalize"
    FINALIZE_UNSEALED = "seal/v0/finalizeunsealed"
    FETCH = "seal/v0/fetch"
    UNSEAL = "seal/v0/unseal"
    REPLICA_UPDATE = "seal/v0/replicaupdate"
    PROVE_REPLICA_UPDATE_1 = "seal/v0/provereplicaupdate/1"
    PROVE_REPLICA_UPDATE_2 = "seal/v0/provereplicaupdate/2"
    REGEN_SECTOR_KEY = "seal/v0/regensectorkey"
    FINALIZE_REPLICA_UPDATE = "seal/v0/finalize/replicaupdate"
    DOWNLOAD_SECTOR = "seal/v0/download/sector"
    WINDOW_POST = "post/v0/windowproof"
    WINNING_POST = "post/v0/winningproof"

    @property
    def short(self) -> str:
        """Lotus' short name (``PC1``, ``GET``, ...), used in env vars and listings."""
        return _SHORT_NAMES[self]

    @property
    def order(self) -> int:
        """Priority order value: lower is more urgent; negative is the high-priority tier."""
        return _ORDER.get(self, 0)

    @property
    def high_priority(self) -> bool:
        """True for the tier scheduled before everything else (negative order value)."""
        return self.order < 0

    @property
    def sector_sized(self) -> bool:
        """False only for DataCid, whose resources do not depend on the sector size."""
        return self is not TaskType.DATA_CID

    @property
    def worker_kind(self) -> str:
        """``WinPost`` / ``WdPoSt`` for the PoSt tasks, ``Sealing`` for everything else."""
        if self is TaskType.WINNING_POST:
            return "WinPost"
        if self is TaskType.WINDOW_POST:
            return "WdPoSt"
        return "Sealing"


_SHORT_NAMES: Final[dict[TaskType, str]] = {
    TaskType.DATA_CID: "DC",
    TaskType.ADD_PIECE: "AP",
    TaskType.PRECOMMIT1: "PC1",
    TaskType.PRECOMMIT2: "PC2",
    TaskType.COMMIT1: "C1",
    TaskType.COMMIT2: "C2",
    TaskType.FINALIZE: "FIN",
    TaskType.FINALIZE_UNSEALED: "FUS",
    TaskType.FETCH: "GET",
    TaskType.UNSEAL: "UNS",
    TaskType.REPLICA_UPDATE: "RU",
    TaskType.PROVE_REPLICA_UPDATE_1: "PR1",
    TaskType.PROVE_REPLICA_UPDATE_2: "PR2",
    TaskType.REGEN_SECTOR_KEY: "GSK",
    TaskType.FINALIZE_REPLICA_UPDATE: "FRU",
    TaskType.DOWNLOAD_SECTOR: "DL",
    TaskType.WINDOW_POST: "WDP",
    TaskType.WINNING_POST: "WNP",
}

_ORDER: Final[dict[TaskType, int]] = {
    TaskType.REGEN_SECTOR_KEY: 11,
    TaskType.DATA_CID: 10,
    TaskType.ADD_PIECE: 9,
    TaskType.REPLICA_UPDATE: 8,
    TaskType.PROVE_REPLICA_UPDATE_2: 7,
    TaskType.PROVE_REPLICA_UPDATE_1: 6,
    TaskType.PRECOMMIT1: 5,
    TaskType.PRECOMMIT2: 4,
    TaskType.COMMIT2: 3,
    TaskType.COMMIT1: 2,
    TaskType.UNSEAL: 1,
    TaskType.FETCH: -1,
    TaskType.DOWNLOAD_SECTOR: -2,
    TaskType.FINALIZE: -3,
    TaskType.FINALIZE_UNSEALED: -4,
    TaskType.WINDOW_POST: -5,
    TaskType.WINNING_POST: -6,
}

_BY_SHORT: Final[dict[str, TaskType]] = {v: k for k, v in _SHORT_NAMES.items()}

TASK_TYPES_BY_ORDER: Final[tuple[TaskType, ...]] = tuple(
    sorted(TaskType, key=lambda t: (t.order, t.value)))
"""Every task type, most urgent first (the order ``info`` and ``sealing workers`` print)."""


def parse_task_type(text: str | TaskType) -> TaskType:
    """Accept a task type string (``seal/v0/precommit/1``) or a short name (``PC1``)."""
    if isinstance(text, TaskType):
        return text
    if not isinstance(text, str):
        raise SchedulerError(f"not a task type: {text!r}")
    value = text.strip()
    try:
        return TaskType(value)
    except ValueError:
        pass
    found = _BY_SHORT.get(value.upper())
    if found is None:
        raise SchedulerError(
            f"unknown task type {text!r}; expected a name like seal/v0/precommit/1 or a "
            f"short name ({', '.join(t.short for t in TASK_TYPES_BY_ORDER)})")
    return found


class SealTaskType(NamedTuple):
    """A (proof, task type) pair: the key of task counters and ``MaxConcurrent`` limits."""

    proof: RegisteredSealProof
    task_type: TaskType

    def __str__(self) -> str:
        """Lotus' rendering ``<proof id>:<task type>``, e.g. ``8:seal/v0/precommit/1``."""
        return f"{int(self.proof)}:{self.task_type.value}"

    @classmethod
    def parse(cls, text: str) -> SealTaskType:
        """Parse ``<proof id>:<task type>`` back into a pair."""
        proof_text, sep, task_text = text.partition(":")
        if not sep:
            raise SchedulerError(f"seal task type {text!r} is not '<proof id>:<task type>'")
        try:
            proof = resolve_proof(proof_text)
        except ValueError as exc:
            raise SchedulerError(f"seal task type {text!r}: {exc}") from None
        return cls(proof, parse_task_type(task_text))
