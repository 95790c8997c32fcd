"""The SDR proof of replication, bit-exact with rust-fil-proofs.

Pure and synchronous: no Trio, no I/O framework, only files and numpy.  The public API
is named like filecoin-proofs (``seal_pre_commit_phase1`` and so on).
"""

from __future__ import annotations

from sealagent.proofs.registry import (
    ApiVersion,
    Feature,
    RegisteredSealProof,
    SectorShape,
    default_proof,
    parse_sector_size,
    resolve_proof,
)

__all__ = [
    "ApiVersion",
    "Feature",
    "RegisteredSealProof",
    "SectorShape",
    "default_proof",
    "parse_sector_size",
    "resolve_proof",
]
