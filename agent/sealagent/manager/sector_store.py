"""Sectors, their event log and their large outputs in the manager database.

Functions of a :class:`~sealagent.manager.db.Transaction`, so that a sector's new state,
its log line and the task result that caused them commit together.
"""

from __future__ import annotations

import json
from typing import Any

from sealagent.errors import ManagerError
from sealagent.manager.db import Transaction
from sealagent.manager.fsm import SectorInfo

NEXT_SECTOR_KEY = "next_sector_number"


def allocate_number(tx: Transaction) -> int:
    """The next free sector number (numbers are never reused)."""
    number = int(tx.get_meta(NEXT_SECTOR_KEY) or 0)
    tx.set_meta(NEXT_SECTOR_KEY, number + 1)
    return number


def save_sector(tx: Transaction, sector: SectorInfo, now: float) -> None:
    """Insert or update a sector."""
    tx.execute(
        "INSERT INTO sectors (number, state, info, created_at, updated_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT (number) DO UPDATE SET state = excluded.state, info = excluded.info, "
        "updated_at = excluded.updated_at",
        (sector.number, str(sector.state), json.dumps(sector.to_json()), now, now))


def load_sectors(tx: Transaction) -> dict[int, SectorInfo]:
    """Every sector, by number."""
    rows = tx.query("SELECT info FROM sectors ORDER BY number")
    sectors = [SectorInfo.from_json(json.loads(r["info"])) for r in rows]
    return {s.number: s for s in sectors}


def change_times(tx: Transaction) -> dict[int, float]:
    """When each sector was last written, by number."""
    return {int(r["number"]): float(r["updated_at"])
            for r in tx.query("SELECT number, updated_at FROM sectors")}


def add_log(tx: Transaction, number: int, kind: str, message: str, now: float) -> None:
    """Append a line to the sector's event log."""
    tx.insert("INSERT INTO sector_log (sector, at, kind, message) VALUES (?,?,?,?)",
              (number, now, kind, message))


def sector_log(tx: Transaction, number: int) -> list[dict[str, Any]]:
    """The sector's event log, oldest first."""
    rows = tx.query("SELECT at, kind, message FROM sector_log WHERE sector = ? ORDER BY id",
                    (number,))
    return [{"at": r["at"], "kind": r["kind"], "message": r["message"]} for r in rows]


def put_blob(tx: Transaction, number: int, name: str, data: str) -> None:
    """Store a large output of the sector (e.g. the Commit1 output)."""
    tx.execute("INSERT INTO sector_blobs (sector, name, data) VALUES (?,?,?) "
               "ON CONFLICT (sector, name) DO UPDATE SET data = excluded.data",
               (number, name, data.encode()))


def get_blob(tx: Transaction, number: int, name: str) -> str:
    """A stored output of the sector; ManagerError when it is missing."""
    row = tx.one("SELECT data FROM sector_blobs WHERE sector = ? AND name = ?", (number, name))
    if row is None:
        raise ManagerError(f"sector {number} has no stored {name}")
    return bytes(row["data"]).decode()


def drop_blobs(tx: Transaction, number: int) -> None:
    """Forget the sector's stored outputs."""
    tx.execute("DELETE FROM sector_blobs WHERE sector = ?", (number,))
