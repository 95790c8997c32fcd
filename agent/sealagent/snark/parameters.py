"""Groth16 parameter files of the PoRep circuit in ``FIL_PROOFS_PARAMETER_CACHE``.

Filecoin's trusted-setup parameters are not used: sealagent generates its own for the
same circuit, once, from local randomness.  The files are named as rust-fil-proofs names
them (``v28-stacked-proof-of-replication-<tree>-sha256_hasher-<id digest>``) plus
``-sealagent-<circuit digest>``, where the circuit digest hashes the circuit's parameters
and the source of the gadgets that build it: parameters made for another circuit (or by
an older version of the gadgets) are never loaded.

* ``.params``: bellperson's parameter layout (verifying key, then h, l, a, b_g1, b_g2);
* ``.vk``: the verifying key in bellperson's layout;
* ``.meta``: JSON with the circuit digest, the R1CS sizes and the SHA-256 of both files.

The ``.meta`` is written last, after both files are complete and renamed into place, so
its presence means the set is whole; every load checks sizes and digests and refuses a
damaged file with :class:`~sealagent.errors.CorruptDataError`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from sealagent.errors import CorruptDataError, InvalidInputError
from sealagent.proofs.parameters import parameter_cache_dir, parameter_file_stem
from sealagent.snark.cs import ConstraintSystem, Shape
from sealagent.snark.groth16 import Parameters, Progress, VerifyingKey, generate_parameters
from sealagent.snark.porep import StackedCircuitParams, synthesize_stacked
from sealagent.snark.stacked import circuit_params
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof

_CIRCUIT_SOURCES: Final = ("cs.py", "bits.py", "sha256.py", "poseidon.py", "merkle.py",
                           "porep.py")
_FORMAT: Final = "sealagent-groth16-v1"


def circuit_digest(params: StackedCircuitParams) -> str:
    """SHA-256 (hex) of the file format, the circuit's parameters and its gadgets' source."""
    h = hashlib.sha256(_FORMAT.encode())
    h.update(repr(params).encode())
    package = resources.files("sealagent.snark")
    for name in _CIRCUIT_SOURCES:
        h.update(package.joinpath(name).read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CircuitFiles:
    """The three files of one circuit's parameters."""

    params: Path
    vk: Path
    meta: Path
    digest: str


def circuit_files(
    registered_proof: RegisteredSealProof | str | int, cache_dir: Path | None = None
) -> CircuitFiles:
    """Where the parameters of a proof type's circuit live."""
    proof = resolve_proof(registered_proof)
    digest = circuit_digest(circuit_params(proof))
    base = cache_dir if cache_dir is not None else parameter_cache_dir()
    stem = f"{parameter_file_stem(proof)}-sealagent-{digest[:16]}"
    return CircuitFiles(base / f"{stem}.params", base / f"{stem}.vk", base / f"{stem}.meta",
                        digest)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_meta(files: CircuitFiles) -> dict[str, Any]:
    try:
        meta = json.loads(files.meta.read_text())
    except FileNotFoundError:
        raise InvalidInputError(
            f"no Groth16 parameters at {files.meta.parent} for this circuit; create them with "
            "'sealagent params generate --sector-size SIZE'"
        ) from None
    except (OSError, ValueError) as exc:
        raise CorruptDataError(f"{files.meta} is unreadable: {exc}") from None
    if not isinstance(meta, dict) or meta.get("circuit_digest") != files.digest:
        raise CorruptDataError(f"{files.meta} does not describe this circuit")
    return meta


def _check_file(path: Path, meta: dict[str, Any], key: str) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CorruptDataError(f"{path} is missing; delete {path.with_suffix('.meta')} and "
                               "generate the parameters again") from None
    if size != meta.get(f"{key}_size") or _sha256_file(path) != meta.get(f"{key}_sha256"):
        raise CorruptDataError(
            f"{path} is corrupt (size or SHA-256 differs from its .meta); delete the "
            "parameter files of this circuit and run 'sealagent params generate' again"
        )


def parameters_exist(registered_proof: RegisteredSealProof | str | int,
                     cache_dir: Path | None = None) -> bool:
    """Whether a complete parameter set for the proof type's circuit is present."""
    return circuit_files(registered_proof, cache_dir).meta.exists()


def load_verifying_key(registered_proof: RegisteredSealProof | str | int,
                       cache_dir: Path | None = None) -> VerifyingKey:
    """The verifying key of a proof type's circuit, checked against its ``.meta``."""
    return read_verifying_key(circuit_files(registered_proof, cache_dir))


def read_verifying_key(files: CircuitFiles) -> VerifyingKey:
    """The verifying key of a parameter set, checked against its ``.meta``."""
    meta = _read_meta(files)
    _check_file(files.vk, meta, "vk")
    try:
        return VerifyingKey.from_bytes(files.vk.read_bytes())
    except InvalidInputError as exc:
        raise CorruptDataError(f"{files.vk}: {exc}") from None


def load_parameters(registered_proof: RegisteredSealProof | str | int,
                    cache_dir: Path | None = None) -> Parameters:
    """The proving parameters (memory-mapped), checked against their ``.meta``."""
    return read_parameters(circuit_files(registered_proof, cache_dir))


def read_parameters(files: CircuitFiles) -> Parameters:
    """The proving parameters of a set (memory-mapped), checked against their ``.meta``."""
    meta = _read_meta(files)
    _check_file(files.params, meta, "params")
    with files.params.open("rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return Parameters(memoryview(mapped))
    except InvalidInputError as exc:
        raise CorruptDataError(f"{files.params}: {exc}") from None


def generate(
    registered_proof: RegisteredSealProof | str | int, cache_dir: Path | None = None,
    progress: Progress | None = None, workers: int = 1,
) -> tuple[CircuitFiles, bool]:
    """Create the parameters of a proof type's circuit unless a complete set exists.

    Returns the files and whether they were created now.  ``workers`` processes share
    the fixed-base multiplications.
    """
    proof = resolve_proof(registered_proof)
    files = circuit_files(proof, cache_dir)

    def shape() -> Shape:
        cs = ConstraintSystem(witness=False, shape=True)
        synthesize_stacked(cs, circuit_params(proof))
        return cs.shape()

    created = write_parameter_set(files, shape, proof.name, progress, workers)
    return files, created


def write_parameter_set(
    files: CircuitFiles, build_shape: Callable[[], Shape], label: str,
    progress: Progress | None = None, workers: int = 1,
) -> bool:
    """Generate and write a parameter set unless a complete one exists (returns whether).

    Concurrent calls serialize on a lock file; the files are written under temporary
    names, synced and renamed, the ``.meta`` last.
    """
    files.params.parent.mkdir(parents=True, exist_ok=True)
    with files.meta.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if files.meta.exists():
            return False
        report = progress or (lambda stage, done, total: None)
        report("synthesize", 0, 1)
        shape = build_shape()
        report("synthesize", 1, 1)
        tmp_params = files.params.with_name(files.params.name + ".tmp")
        with tmp_params.open("wb") as f:
            if workers > 1:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    vk = generate_parameters(shape, f, report, pool=pool)
            else:
                vk = generate_parameters(shape, f, report)
            f.flush()
            os.fsync(f.fileno())
        vk_bytes = vk.to_bytes()
        tmp_vk = files.vk.with_name(files.vk.name + ".tmp")
        _fsync_write(tmp_vk, vk_bytes)
        meta = {
            "format": _FORMAT, "circuit": label, "circuit_digest": files.digest,
            "constraints": shape.num_constraints, "public_inputs": shape.num_inputs,
            "private_variables": shape.num_aux,
            "params_size": tmp_params.stat().st_size, "params_sha256": _sha256_file(tmp_params),
            "vk_size": len(vk_bytes), "vk_sha256": hashlib.sha256(vk_bytes).hexdigest(),
        }
        os.replace(tmp_params, files.params)
        os.replace(tmp_vk, files.vk)
        tmp_meta = files.meta.with_name(files.meta.name + ".tmp")
        _fsync_write(tmp_meta, json.dumps(meta, indent=1).encode())
        os.replace(tmp_meta, files.meta)
        dir_fd = os.open(files.meta.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True
