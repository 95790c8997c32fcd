"""Groth16 parameter files of the SDR PoRep circuit: identifiers and file names.

rust-fil-proofs names each circuit's parameter files after the SHA-256 of its public
parameters' identifier string (storage-proofs-core ``parameter_cache.rs``):
``v28-stacked-proof-of-replication-<tree>-sha256_hasher-<hex digest>`` with the suffixes
``.params`` (proving key), ``.vk`` (verifying key) and ``.meta`` (circuit metadata).
The files live in ``FIL_PROOFS_PARAMETER_CACHE`` (default
``/var/tmp/filecoin-proof-parameters/``).  One circuit serves every partition of a
sector size, and the synthetic and non-interactive proofs of that size share it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sealagent.vocab.registry import RegisteredSealProof, resolve_proof

PARAMETER_CACHE_ENV: Final = "FIL_PROOFS_PARAMETER_CACHE"
DEFAULT_PARAMETER_CACHE: Final = "/var/tmp/filecoin-proof-parameters/"
PARAMETER_VERSION: Final = "v28"
_CIRCUIT_NAME: Final = "stacked-proof-of-replication"
_DRG_DEGREE: Final = 6
_EXPANSION_DEGREE: Final = 8


@dataclass(frozen=True)
class ParameterFiles:
    """The three files of one circuit's Groth16 parameters."""

    params: Path
    vk: Path
    meta: Path


def tree_display(registered_proof: RegisteredSealProof | str | int) -> str:
    """The tree's display name: ``merkletree-poseidon_hasher-<base>-<sub>-<top>``."""
    shape = resolve_proof(registered_proof).shape
    return f"merkletree-poseidon_hasher-{shape.shape_name}"


def parameter_identifier(registered_proof: RegisteredSealProof | str | int) -> str:
    """The public-parameters identifier whose SHA-256 names the parameter files."""
    proof = resolve_proof(registered_proof)
    return (
        "layered_drgporep::PublicParams{ graph: stacked_graph::StackedGraph{"
        f"expansion_degree: {_EXPANSION_DEGREE} base_graph: drgraph::BucketGraph{{"
        f"size: {proof.nodes}; degree: {_DRG_DEGREE}; hasher: poseidon_hasher}} }}, "
        f"challenges: LayerChallenges {{ layers: {proof.layers}, "
        f"max_count: {proof.shape.challenges_per_partition} }}, "
        f"tree: {tree_display(proof)} }}"
    )


def parameter_file_stem(registered_proof: RegisteredSealProof | str | int) -> str:
    """The parameter files' name without suffix, as rust-fil-proofs derives it."""
    digest = hashlib.sha256(parameter_identifier(registered_proof).encode()).hexdigest()
    return (
        f"{PARAMETER_VERSION}-{_CIRCUIT_NAME}-{tree_display(registered_proof)}"
        f"-sha256_hasher-{digest}"
    )


def parameter_cache_dir() -> Path:
    """``FIL_PROOFS_PARAMETER_CACHE``, or rust-fil-proofs' default directory."""
    return Path(os.environ.get(PARAMETER_CACHE_ENV) or DEFAULT_PARAMETER_CACHE)


def parameter_files(
    registered_proof: RegisteredSealProof | str | int, cache_dir: Path | None = None
) -> ParameterFiles:
    """Paths of the ``.params``, ``.vk`` and ``.meta`` files of a proof's circuit."""
    stem = parameter_file_stem(registered_proof)
    base = cache_dir if cache_dir is not None else parameter_cache_dir()
    return ParameterFiles(
        params=base / f"{stem}.params", vk=base / f"{stem}.vk", meta=base / f"{stem}.meta"
    )
