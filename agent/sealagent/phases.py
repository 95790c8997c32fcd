"""Sealing phases and the messages that carry them.

A phase is one step of a sector's life that a backend runs: AddPiece, PreCommit1,
PreCommit2, Commit1, Commit2, Unseal, Finalize.  Each :class:`Phase` is named by its Lotus
task type (``seal/v0/precommit/1``) and has one request and one result type.

Requests and results are frozen dataclasses made of plain values only (paths as ``str``,
byte strings as lower-case hex, commitments as CIDs, the proofs library's opaque outputs
as JSON text), so they travel unchanged between the manager, an agent and the child
process that runs a phase: ``message.to_json()`` gives a JSON-ready ``dict`` and
``Type.from_json(data)`` rebuilds (and validates) it.

Adding a phase means adding an enum member, its two message classes, one row in
``_SPECS`` and one hook in :mod:`sealagent.hookspecs`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Self

from sealagent.errors import InvalidInputError
from sealagent.proofs.cid import uvarint
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof
from sealagent.vocab.sectors import SECTOR_FILES, FileType, SectorID, sector_path
from sealagent.vocab.tasks import TaskType

HEX32_LEN: Final = 64
"""Length of a 32-byte value written as hex."""
NO_FILES: Final = FileType(0)
"""What a phase that reads or creates no sector file names."""


class Phase(enum.Enum):
    """A sealing phase, valued by its Lotus task type (the scheduler's :class:`TaskType`)."""

    ADD_PIECE = TaskType.ADD_PIECE
    PRECOMMIT1 = TaskType.PRE_COMMIT_1
    PRECOMMIT2 = TaskType.PRE_COMMIT_2
    COMMIT1 = TaskType.COMMIT_1
    COMMIT2 = TaskType.COMMIT_2
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


# --------------------------------------------------------------------------------------
# JSON codec shared by every message
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """Base of every message: a frozen dataclass of plain, JSON-ready values."""

    def to_json(self) -> dict[str, Any]:
        """The message as a JSON-ready ``dict`` (tuples become lists)."""
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Rebuild a message from :meth:`to_json` output, checking every field's type.

        :raises InvalidInputError: a field is missing, unknown or of the wrong type.
        """
        if not isinstance(data, dict):
            raise InvalidInputError(f"{cls.__name__}: expected a JSON object, "
                                    f"got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise InvalidInputError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, field in fields.items():
            if name in data:
                values[name] = _decode(data[name], hints[name], f"{cls.__name__}.{name}")
            elif (field.default is dataclasses.MISSING
                  and field.default_factory is dataclasses.MISSING):
                raise InvalidInputError(f"{cls.__name__}: missing field {name!r}")
        return cls(**values)


def _encode(value: Any) -> Any:
    """Turn a field value into JSON-ready data."""
    if isinstance(value, Message):
        return value.to_json()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert it (lists to tuples, messages)."""
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        for option in typing.get_args(hint):
            try:
                return _decode(value, option, where)
            except InvalidInputError:
                continue
        raise InvalidInputError(f"{where}: {value!r} is not a valid {hint}")
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise InvalidInputError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_decode(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is type(None):
        if value is not None:
            raise InvalidInputError(f"{where}: expected null")
        return None
    if isinstance(hint, type) and issubclass(hint, Message):
        return hint.from_json(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise InvalidInputError(f"{where}: expected {hint.__name__}, got a boolean")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    name = getattr(hint, "__name__", str(hint))
    raise InvalidInputError(f"{where}: expected {name}, got {type(value).__name__}")


def check_hex(value: str, where: str, *, length: int | None = HEX32_LEN) -> str:
    """Validate lower-case hex text (by default of a 32-byte value) and return it."""
    if length is not None and len(value) != length:
        raise InvalidInputError(f"{where}: expected {length} hex digits, got {len(value)}")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise InvalidInputError(f"{where}: not hex: {value!r}") from None
    if value != value.lower():
        raise InvalidInputError(f"{where}: hex must be lower-case")
    return value


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
    why (``"no CUDA GPU"``).
    """

    name: str
    description: str
    version: str
    available: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class _PhaseSpec:
    """The static facts of one phase."""

    label: str
    hook: str
    request: type[PhaseRequest]
    result: type[PhaseResult]
    reads: FileType = NO_FILES
    creates: FileType = NO_FILES


_SEALED_AND_CACHE: Final = FileType.SEALED | FileType.CACHE

_SPECS: Final[dict[Phase, _PhaseSpec]] = {
    Phase.ADD_PIECE: _PhaseSpec("AddPiece", "sealagent_addpiece", AddPieceRequest,
                                AddPieceResult, creates=FileType.UNSEALED),
    Phase.PRECOMMIT1: _PhaseSpec("PreCommit1", "sealagent_precommit1", PreCommit1Request,
                                 PreCommit1Result, reads=FileType.UNSEALED,
                                 creates=_SEALED_AND_CACHE),
    Phase.PRECOMMIT2: _PhaseSpec("PreCommit2", "sealagent_precommit2", PreCommit2Request,
                                 PreCommit2Result, reads=_SEALED_AND_CACHE),
    Phase.COMMIT1: _PhaseSpec("Commit1", "sealagent_commit1", Commit1Request, Commit1Result,
                              reads=_SEALED_AND_CACHE),
    Phase.COMMIT2: _PhaseSpec("Commit2", "sealagent_commit2", Commit2Request, Commit2Result),
    Phase.UNSEAL: _PhaseSpec("Unseal", "sealagent_unseal", UnsealRequest, UnsealResult,
                             reads=_SEALED_AND_CACHE),
    Phase.FINALIZE: _PhaseSpec("Finalize", "sealagent_finalize", FinalizeRequest,
                               FinalizeResult, reads=FileType.CACHE),
}
