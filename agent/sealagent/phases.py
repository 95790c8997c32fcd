"""Sealing phases and the messages that carry them.

A phase is one step of a sector's life that a backend runs: AddPiece, PreCommit1,
PreCommit2, Commit1, Commit2, Unseal, Finalize.  Each :class:`Phase` is named by its Lotus
task type (``seal/v0/precommit/1``) and has one request and one result type.

Requests and results are frozen dataclasses made of plain values only (paths as ``str``,
byte strings as lower-case hex, commitments as CIDs, the proofs library's opaque outputs
as JSON text), so they travel unchanged between the manager, an agent and the child
process that runs a phase: ``message.to_json()`` gives a JSON-ready ``dict`` and
``Type.from_json(data)`` rebuilds (and validates) it (:mod:`sealagent.codec`).

Adding a phase means adding an enum member, its two message classes, one row in
``_SPECS`` and one hook in :mod:`sealagent.hookspecs`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

from sealagent.codec import Message, check_hex
from sealagent.errors import InvalidInputError
from sealagent.proofs.cid import uvarint
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof
from sealagent.vocab.sectors import SECTOR_FILES, FileType, SectorID, sector_path
from sealagent.vocab.tasks import TaskType

NO_FILES: Final = FileType(0)
"""What a phase that reads or creates no sector file names."""


class Phase(enum.Enum):
    """A sealing phase, valued by its Lotus task type (the scheduler's :class:`TaskType`)."""

    ADD_PIECE = TaskType.ADD_PIECE
    PRECOMMIT1 = TaskType.PRECOMMIT1
    PRECOMMIT2 = TaskType.PRECOMMIT2
    COMMIT1 = TaskType.COMMIT1
    COMMIT2 = TaskType.COMMIT2
    UNSEAL = TaskType.UNSEAL
    FINALIZE = TaskType.FINALIZE

    @property
    def task_type(self) -> TaskType:
        """The Lotus task type (``seal/v0/precommit/1``; a ``str``)."""
        return self.value

    @property
    def label(self) -> str:
        """The human name (``PreCommit1``)."""
        return _SPECS[self].label

    @property
    def short(self) -> str:
        """The short name Lotus prints in ``sealing jobs`` (``PC1``)."""
        return self.value.short

    @property
    def reads(self) -> FileType:
        """The sector files the phase reads: they must be on the agent before it runs."""
        return _SPECS[self].reads

    @property
    def creates(self) -> FileType:
        """The sector files the phase creates (the agent needs room for them)."""
        return _SPECS[self].creates

    @property
    def writes(self) -> FileType:
        """The sector files the phase creates or changes: once it reports them, copies of
        them elsewhere are stale.  (Copies of the files it only reads are not.)"""
        return _SPECS[self].creates | _SPECS[self].changes

    @property
    def hook_name(self) -> str:
        """The hook a backend implements for this phase (``sealagent_precommit1``)."""
        return _SPECS[self].hook

    @property
    def request_type(self) -> type[PhaseRequest]:
        """The request message class of this phase."""
        return _SPECS[self].request

    @property
    def result_type(self) -> type[PhaseResult]:
        """The result message class of this phase."""
        return _SPECS[self].result

    @classmethod
    def parse(cls, text: str | Phase) -> Phase:
        """Accept a phase as member, task type, label, short name or member name.

        Matching ignores case: ``"pc1"``, ``"PreCommit1"``, ``"PRECOMMIT1"`` and
        ``"seal/v0/precommit/1"`` all give :attr:`PRECOMMIT1`.
        """
        if isinstance(text, Phase):
            return text
        key = str(text).strip().lower()
        for phase in cls:
            if key in (phase.value, phase.label.lower(), phase.short.lower(),
                       phase.name.lower()):
                return phase
        names = ", ".join(p.label for p in cls)
        raise InvalidInputError(f"unknown phase {text!r}; expected one of {names}")


def _check_non_negative(value: int, where: str) -> None:
    """Reject negative sizes and offsets."""
    if value < 0:
        raise InvalidInputError(f"{where}: must not be negative, got {value}")


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SectorRef(Message):
    """A sector: its miner (actor id of ``f0<miner>``), number and registered proof."""

    miner: int
    number: int
    proof: str
    """Registered seal proof name, e.g. ``StackedDrg2KiBV1_1``."""

    def __post_init__(self) -> None:
        _check_non_negative(self.miner, "SectorRef.miner")
        _check_non_negative(self.number, "SectorRef.number")
        object.__setattr__(self, "proof", resolve_proof(self.proof).name)

    @property
    def registered_proof(self) -> RegisteredSealProof:
        """The registered seal proof as the enum member."""
        return resolve_proof(self.proof)

    @property
    def id(self) -> SectorID:
        """The sector's id (miner and number), as storage names files by."""
        return SectorID(self.miner, self.number)

    @property
    def file_name(self) -> str:
        """The sector's file name in Lotus' layout: ``s-t0<miner>-<number>``."""
        return self.id.name

    @property
    def prover_id(self) -> bytes:
        """The prover id Lotus derives from the miner's ID address.

        It is the address payload, ``uvarint(actor_id)``, zero-padded to 32 bytes
        (``f01000`` gives ``e8 07 00 … 00``).
        """
        return uvarint(self.miner).ljust(32, b"\0")


@dataclass(frozen=True)
class SectorPaths(Message):
    """Where a sector's files are: the unsealed file, the sealed file, the cache directory."""

    unsealed: str
    sealed: str
    cache: str

    @classmethod
    def under(cls, root: str | Path, sector: SectorRef) -> SectorPaths:
        """Lotus' layout in one storage path: ``<root>/{unsealed,sealed,cache}/s-t0…``."""
        return cls(*(str(sector_path(root, kind, sector.id)) for kind in SECTOR_FILES.split()))


@dataclass(frozen=True)
class PieceRef(Message):
    """A piece as Lotus' ``abi.PieceInfo``: padded size and piece CID (``baga…``)."""

    size: int
    cid: str

    def __post_init__(self) -> None:
        if self.size < 128 or self.size & (self.size - 1):
            raise InvalidInputError(f"PieceRef.size: padded piece size must be a power of "
                                    f"two ≥ 128, got {self.size}")
        if not self.cid:
            raise InvalidInputError("PieceRef.cid: empty")


@dataclass(frozen=True)
class PhaseRequest(Message):
    """Base of the requests: every request names its sector."""

    phase: ClassVar[Phase]
    sector: SectorRef


@dataclass(frozen=True)
class PhaseResult(Message):
    """Base of the results."""

    phase: ClassVar[Phase]


# --------------------------------------------------------------------------------------
# Phase messages
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddPieceRequest(PhaseRequest):
    """Write one piece into the sector's unsealed file, after the pieces already there.

    ``piece_file`` holds exactly ``piece_size`` unpadded bytes; ``None`` adds a piece of
    zeros (a committed-capacity pledge).  Sizes are unpadded (``127·2^k``).
    """

    phase: ClassVar[Phase] = Phase.ADD_PIECE
    paths: SectorPaths
    piece_size: int
    piece_file: str | None = None
    existing_piece_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check_non_negative(self.piece_size, "AddPieceRequest.piece_size")
        for size in self.existing_piece_sizes:
            _check_non_negative(size, "AddPieceRequest.existing_piece_sizes")


@dataclass(frozen=True)
class AddPieceResult(PhaseResult):
    """The piece written, its padded offset in the sector, and the unpadded bytes written.

    ``written`` counts the zero fill before the piece too, as filecoin-proofs does.
    """

    phase: ClassVar[Phase] = Phase.ADD_PIECE
    piece: PieceRef
    offset: int
    written: int


@dataclass(frozen=True)
class PreCommit1Request(PhaseRequest):
    """Label the sector (SDR) from its unsealed file; ``ticket`` is 32 bytes of hex."""

    phase: ClassVar[Phase] = Phase.PRECOMMIT1
    paths: SectorPaths
    ticket: str
    pieces: tuple[PieceRef, ...]

    def __post_init__(self) -> None:
        check_hex(self.ticket, "PreCommit1Request.ticket")


@dataclass(frozen=True)
class PreCommit1Result(PhaseResult):
    """The proofs library's PreCommit1 output, as its JSON text (opaque to the core)."""

    phase: ClassVar[Phase] = Phase.PRECOMMIT1
    pc1_output: str


@dataclass(frozen=True)
class PreCommit2Request(PhaseRequest):
    """Build tree_c and tree_r_last and write the sealed replica."""

    phase: ClassVar[Phase] = Phase.PRECOMMIT2
    paths: SectorPaths
    pc1_output: str


@dataclass(frozen=True)
class PreCommit2Result(PhaseResult):
    """The sector's commitments as CIDs: ``comm_d`` (unsealed) and ``comm_r`` (sealed)."""

    phase: ClassVar[Phase] = Phase.PRECOMMIT2
    comm_d: str
    comm_r: str


@dataclass(frozen=True)
class Commit1Request(PhaseRequest):
    """Produce the vanilla proofs for the challenges drawn from ``seed`` (32 bytes hex)."""

    phase: ClassVar[Phase] = Phase.COMMIT1
    paths: SectorPaths
    ticket: str
    seed: str
    pieces: tuple[PieceRef, ...]
    comm_d: str
    comm_r: str

    def __post_init__(self) -> None:
        check_hex(self.ticket, "Commit1Request.ticket")
        check_hex(self.seed, "Commit1Request.seed")


@dataclass(frozen=True)
class Commit1Result(PhaseResult):
    """The proofs library's Commit1 output, as its JSON text (Lotus' ``Commit1Out``)."""

    phase: ClassVar[Phase] = Phase.COMMIT1
    c1_output: str


@dataclass(frozen=True)
class Commit2Request(PhaseRequest):
    """Turn the Commit1 output into the SNARK proof."""

    phase: ClassVar[Phase] = Phase.COMMIT2
    c1_output: str


@dataclass(frozen=True)
class Commit2Result(PhaseResult):
    """The seal proof bytes (192 per partition) as hex."""

    phase: ClassVar[Phase] = Phase.COMMIT2
    proof: str

    def __post_init__(self) -> None:
        check_hex(self.proof, "Commit2Result.proof", length=None)


@dataclass(frozen=True)
class UnsealRequest(PhaseRequest):
    """Recover ``size`` unpadded bytes at unpadded ``offset`` from the sealed replica.

    The bytes are written, unpadded, to ``output`` (filecoin-proofs' ``unseal_range``).
    """

    phase: ClassVar[Phase] = Phase.UNSEAL
    paths: SectorPaths
    ticket: str
    comm_d: str
    offset: int
    size: int
    output: str

    def __post_init__(self) -> None:
        check_hex(self.ticket, "UnsealRequest.ticket")
        _check_non_negative(self.offset, "UnsealRequest.offset")
        _check_non_negative(self.size, "UnsealRequest.size")


@dataclass(frozen=True)
class UnsealResult(PhaseResult):
    """How many unpadded bytes were written."""

    phase: ClassVar[Phase] = Phase.UNSEAL
    written: int


@dataclass(frozen=True)
class FinalizeRequest(PhaseRequest):
    """Drop what proving does not need: the cache's layers and trees, maybe the unsealed file."""

    phase: ClassVar[Phase] = Phase.FINALIZE
    paths: SectorPaths
    keep_unsealed: bool = True


@dataclass(frozen=True)
class FinalizeResult(PhaseResult):
    """The files removed, as paths."""

    phase: ClassVar[Phase] = Phase.FINALIZE
    removed: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------
# Backend description
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendInfo(Message):
    """What a backend says about itself (:func:`~sealagent.hookspecs.sealagent_backend_info`).

    ``available`` is false when the backend cannot run on this host; ``reason`` then says
    why (``"no CUDA GPU"``).  ``kernel_cache`` is the directory where the backend keeps
    compiled kernels, if it has any (see :func:`~sealagent.hookspecs.sealagent_warm`).
    """

    name: str
    description: str
    version: str
    available: bool = True
    reason: str | None = None
    kernel_cache: str | None = None


@dataclass(frozen=True)
class _PhaseSpec:
    """The static facts of one phase."""

    label: str
    hook: str
    request: type[PhaseRequest]
    result: type[PhaseResult]
    reads: FileType = NO_FILES
    creates: FileType = NO_FILES
    changes: FileType = NO_FILES
    """Files it reads and changes in place."""


_SEALED_AND_CACHE: Final = FileType.SEALED | FileType.CACHE

_SPECS: Final[dict[Phase, _PhaseSpec]] = {
    Phase.ADD_PIECE: _PhaseSpec("AddPiece", "sealagent_addpiece", AddPieceRequest,
                                AddPieceResult, creates=FileType.UNSEALED),
    Phase.PRECOMMIT1: _PhaseSpec("PreCommit1", "sealagent_precommit1", PreCommit1Request,
                                 PreCommit1Result, reads=FileType.UNSEALED,
                                 creates=_SEALED_AND_CACHE),
    Phase.PRECOMMIT2: _PhaseSpec("PreCommit2", "sealagent_precommit2", PreCommit2Request,
                                 PreCommit2Result, reads=_SEALED_AND_CACHE,
                                 changes=_SEALED_AND_CACHE),
    Phase.COMMIT1: _PhaseSpec("Commit1", "sealagent_commit1", Commit1Request, Commit1Result,
                              reads=_SEALED_AND_CACHE),
    Phase.COMMIT2: _PhaseSpec("Commit2", "sealagent_commit2", Commit2Request, Commit2Result),
    Phase.UNSEAL: _PhaseSpec("Unseal", "sealagent_unseal", UnsealRequest, UnsealResult,
                             reads=_SEALED_AND_CACHE, creates=FileType.UNSEALED),
    Phase.FINALIZE: _PhaseSpec("Finalize", "sealagent_finalize", FinalizeRequest,
                               FinalizeResult, reads=FileType.CACHE, changes=FileType.CACHE),
}
