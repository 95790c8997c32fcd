"""The ``sealagent`` commands: each one's module under ``sealagent.cli`` and help line.

Kept apart from the modules so that a call builds the real parser of its own command only
and lists the others from this table, without importing them (see :mod:`sealagent.cli`).
"""

from __future__ import annotations

from typing import Final

COMMANDS: Final[dict[str, str]] = {
    "plugins": "list installed backends",
    "bench": "seal one sector and measure every phase",
    "proofs": "PoRep utilities (commP)",
    "params": "Groth16 parameters (generate, info)",
    "miner": "the sealing manager",
    "sectors": "sectors of the manager",
    "pieces": "deal pieces in sectors: list, get their bytes back",
    "sealing": "the scheduler and its workers",
    "storage": "storage paths",
    "auth": "API tokens",
    "run": "run a sealing agent (lotus-worker run)",
    "info": "show a running agent's status (lotus-worker info)",
    "tasks": "enable or disable task types on a running agent",
    "devnet": "run a manager and agents locally and seal sectors end to end",
    "resources": "print resource table overrides (KEY=VALUE)",
}
"""Command (and the module of ``sealagent.cli`` that registers it) → its help line, in
help order."""
