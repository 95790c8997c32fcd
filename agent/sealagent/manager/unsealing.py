"""Unsealing and retrieval: the facts the manager needs, as pure functions.

An Unseal task is asked for by an admin call (``sectors unseal``, ``pieces get``), not by
the sector's state machine: it runs :attr:`~sealagent.phases.Phase.UNSEAL` over the
whole sector (the plugin contract is unchanged), leaves the sector's ``task_id`` alone,
is never withdrawn as stale, and its report becomes a line of the sector's log instead of
a state machine event (:func:`result_story`).  The agent writes the unsealed file in the
layout AddPiece gives it (Fr32-padded, the sector's size), so a piece is read back with
Range reads of its padded span (:func:`piece_span`) and unpadded.

:mod:`.unseal_requests` queues these tasks and answers their status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sealagent.errors import ManagerError
from sealagent.manager.fsm import SectorInfo, SectorState
from sealagent.manager.pipeline import task_params
from sealagent.manager.tasks import TaskRecord
from sealagent.phases import Phase
from sealagent.proofs.fr32 import PADDED_BLOCK, UNPADDED_BLOCK, to_unpadded_size
from sealagent.protocol import Report
from sealagent.vocab.registry import resolve_proof
from sealagent.vocab.sectors import FileType

REQUEST_PHASES: Final = frozenset({Phase.UNSEAL})
"""Phases whose tasks admin calls ask for, outside the sector's state flow."""

UNSEALABLE: Final = frozenset({SectorState.PROVING})
"""The states in which a sector is sealed, finalized and so may be unsealed."""

READ_LIMIT: Final = 1 << 20
"""The most piece bytes one ``Pieces.Read`` call answers."""


@dataclass(frozen=True)
class PieceSpan:
    """Where a deal piece lies in its sector's unsealed file."""

    cid: str
    sector: int
    index: int
    offset: int
    """Padded byte offset of the piece in the sector."""
    padded_size: int

    @property
    def size(self) -> int:
        """The piece's original (unpadded) bytes."""
        return to_unpadded_size(self.padded_size)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"cid": self.cid, "sector": self.sector, "index": self.index,
                "offset": self.offset, "padded_size": self.padded_size, "size": self.size}


def piece_spans(sector: SectorInfo) -> list[PieceSpan]:
    """The sector's deal pieces and where each lies (pieces follow each other, fillers
    included, from offset 0)."""
    spans, offset = [], 0
    for index, piece in enumerate(sector.pieces):
        if piece.deal:
            spans.append(PieceSpan(piece.cid, sector.number, index, offset, piece.size))
        offset += piece.size
    return spans


def find_piece(sectors: Iterable[SectorInfo], cid: str,
               unsealed: Mapping[int, bool]) -> tuple[SectorInfo, PieceSpan]:
    """The sector holding deal piece ``cid`` and where; among several, one with an
    unsealed copy (``unsealed``: sector number → indexed copy), then a sealed one, then
    the lowest number.

    :raises ManagerError: no sector holds that piece.
    """
    found = [(s, span) for s in sectors for span in piece_spans(s) if span.cid == cid]
    if not found:
        raise ManagerError(f"no sector holds a deal piece with CID {cid}")
    found.sort(key=lambda f: (not unsealed.get(f[0].number, False),
                              f[0].state not in UNSEALABLE, f[0].number))
    return found[0]


def check_unsealable(sector: SectorInfo) -> None:
    """Raise ManagerError unless ``sector`` is sealed (Proving), so an Unseal can run."""
    if sector.state not in UNSEALABLE:
        raise ManagerError(f"sector {sector.number} is in {sector.state}, not sealed yet: "
                           "it can be unsealed once it is Proving")


def unseal_params(miner: int, sector: SectorInfo) -> dict[str, Any]:
    """The Unseal request (without ``paths`` and ``output``, which are the agent's) for
    the whole sector: every byte of its pieces, fillers included."""
    size = to_unpadded_size(resolve_proof(sector.proof).sector_size)
    return {**task_params(Phase.UNSEAL, miner, sector), "offset": 0, "size": size}


def read_window(span: PieceSpan, offset: int, length: int) -> tuple[int, int, int]:
    """For piece bytes ``[offset, offset + length)``: the padded ``(start, size)`` in the
    unsealed file to read, and where those bytes start in the unpadded read.

    :raises ManagerError: a range outside the piece, or longer than :data:`READ_LIMIT`.
    """
    if offset < 0 or length < 0 or offset + length > span.size:
        raise ManagerError(f"range {offset}+{length} is outside the {span.size}-byte piece")
    if length > READ_LIMIT:
        raise ManagerError(f"read at most {READ_LIMIT} bytes at once, not {length}")
    first = offset // UNPADDED_BLOCK
    last = -(-(offset + length) // UNPADDED_BLOCK)
    start = span.offset + first * PADDED_BLOCK
    return start, (last - first) * PADDED_BLOCK, offset - first * UNPADDED_BLOCK


def result_story(task: TaskRecord, report: Report, host: str) -> tuple[str, str]:
    """The sector's log line (kind, message) for the report of an Unseal task."""
    name = f"{task.phase.label} task {task.task_id} (attempt {task.attempt})"
    took = ""
    if task.started_at is not None and task.finished_at is not None:
        took = f" in {task.finished_at - task.started_at:.2f}s"
    if not report.ok:
        return "UnsealFailed", f"{name} failed on {host}{took}: {report.error}"
    paths = sorted({f.path_id for f in report.declared if f.file_type is FileType.UNSEALED})
    written = (report.result or {}).get("written")
    where = f"; the unsealed copy is in {', '.join(paths)}" if paths else ""
    return "Unsealed", f"{name} done on {host}{took}: {written} bytes unsealed{where}"
