"""Sealing: PreCommit1 (tree_d + labels) and PreCommit2 (tree_c, replica, tree_r_last).

Shaped like filecoin-proofs' ``seal_pre_commit_phase1`` / ``seal_pre_commit_phase2``
(docs/porep.md §4, §6, §7) and reading/writing the same files in the same places:

* PC1 copies the staged unsealed file (padded layout, exactly ``sector_size`` bytes) to
  the sealed path, builds ``tree_d`` over it, checks CommD against the pieces, derives the
  replica id and writes the label layers (resuming after the last complete layer).
* PC2 hashes the columns into ``tree_c``, encodes ``replica = key + data (mod r)`` into
  the sealed file, builds ``tree_r_last`` and writes ``p_aux``/``t_aux``.  The data nodes
  are read from tree_d's leaf row, not from the sealed file, so a PC2 interrupted while
  encoding runs again safely.

Every phase streams its files through memory maps a chunk at a time: memory grows with
the layers a phase reads at once (a chunk of each), never with per-node Python objects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from sealagent.errors import (
    CommitmentMismatchError,
    CorruptDataError,
    InvalidInputError,
)
from sealagent.proofs.cache_files import (
    PersistentAux,
    StoreConfig,
    TemporaryAux,
    existing_dir,
    layer_id,
    layer_path,
    sector_file,
)
from sealagent.proofs.challenges import bytes32
from sealagent.proofs.field import trim
from sealagent.proofs.kernels import REFERENCE_KERNELS, Progress, SealKernels, report
from sealagent.proofs.labels import completed_layers, create_label_layers
from sealagent.proofs.merkle import (
    NODE_BYTES,
    TreeLayout,
    domain_from_json,
    domain_to_json,
    tree_c_layout,
    tree_d_layout,
    tree_r_last_layout,
)
from sealagent.proofs.parent_cache import load_parents
from sealagent.proofs.pieces import PieceInfo, generate_data_commitment
from sealagent.proofs.poseidon import poseidon_hash
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof

Nodes: TypeAlias = npt.NDArray[np.uint8]

_U64_MAX: Final = (1 << 64) - 1


def _sector_number(sector_id: int) -> int:
    """Require a ``u64`` sector number."""
    if isinstance(sector_id, bool) or not isinstance(sector_id, int) \
            or not 0 <= sector_id <= _U64_MAX:
        raise InvalidInputError(f"sector id must be a u64, got {sector_id!r}")
    return sector_id


def generate_replica_id(
    prover_id: bytes, sector_id: int, ticket: bytes, comm_d: bytes, porep_id: bytes
) -> bytes:
    """``trim(SHA256(prover_id || u64_be(sector_id) || ticket || comm_d || porep_id))``
    (docs/porep.md §4)."""
    message = (
        bytes32("prover_id", prover_id)
        + struct.pack(">Q", _sector_number(sector_id))
        + bytes32("ticket", ticket)
        + bytes32("comm_d", comm_d)
        + bytes32("porep_id", porep_id)
    )
    return trim(hashlib.sha256(message).digest())


def domain_field(data: Mapping[str, Any], key: str) -> bytes:
    """The 32-byte domain ``data[key]`` (serde ``[u8; 32]``); InvalidInputError naming it."""
    try:
        return domain_from_json(data.get(key))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{key}: {exc}") from None


def json_object(obj: Any, what: str) -> Mapping[str, Any]:
    """Accept a parsed JSON object, or JSON text / bytes holding one."""
    if isinstance(obj, str | bytes | bytearray):
        try:
            obj = json.loads(obj)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise InvalidInputError(f"{what} must be a JSON object")
    return obj


def proof_from_json(obj: Mapping[str, Any]) -> RegisteredSealProof:
    """The ``registered_proof`` field (a name such as ``StackedDrg2KiBV1_1``)."""
    if "registered_proof" not in obj:
        raise InvalidInputError("missing registered_proof")
    return resolve_proof(obj["registered_proof"])


@dataclass(frozen=True)
class PreCommit1Output:
    """What PC1 hands to PC2 (filecoin-proofs' ``SealPreCommitPhase1Output``).

    ``replica_id`` and ``ticket`` are extras: rust ignores unknown fields, Lotus itself
    adds the ticket as ``_lotus_SealRandomness``.  Both may be absent in output produced
    elsewhere.
    """

    registered_proof: RegisteredSealProof
    labels: tuple[StoreConfig, ...]
    config: StoreConfig
    comm_d: bytes
    replica_id: bytes | None = None
    ticket: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        """serde form (docs/porep.md §9.6) plus ``replica_id`` and ``_lotus_SealRandomness``."""
        out: dict[str, Any] = {
            "registered_proof": self.registered_proof.name,
            "labels": {self.registered_proof.v1_name: {
                "labels": [c.to_json() for c in self.labels], "_h": None}},
            "config": self.config.to_json(),
            "comm_d": domain_to_json(self.comm_d),
        }
        if self.replica_id is not None:
            out["replica_id"] = domain_to_json(self.replica_id)
        if self.ticket is not None:
            out["_lotus_SealRandomness"] = base64.b64encode(self.ticket).decode()
        return out

    @classmethod
    def from_json(cls, obj: Any) -> PreCommit1Output:
        """Parse :meth:`to_json`'s form (or JSON text of it); InvalidInputError if malformed."""
        data = json_object(obj, "PC1 output")
        proof = proof_from_json(data)
        labels = data.get("labels")
        if not isinstance(labels, Mapping) or set(labels) != {proof.v1_name}:
            raise InvalidInputError(f"PC1 labels must be keyed by {proof.v1_name}")
        inner = labels[proof.v1_name]
        if not isinstance(inner, Mapping) or not isinstance(inner.get("labels"), list):
            raise InvalidInputError('PC1 labels must be {"labels": [...]}')
        configs = tuple(StoreConfig.from_json(c) for c in inner["labels"])
        if len(configs) != proof.layers:
            raise InvalidInputError(f"{proof.name} has {proof.layers} layers, PC1 lists "
                                    f"{len(configs)}")
        ticket = None
        if data.get("_lotus_SealRandomness") is not None:
            try:
                ticket = base64.b64decode(data["_lotus_SealRandomness"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise InvalidInputError("_lotus_SealRandomness is not base64") from None
            bytes32("_lotus_SealRandomness", ticket)
        replica_id = data.get("replica_id")
        return cls(
            proof, configs, StoreConfig.from_json(data.get("config")),
            domain_field(data, "comm_d"),
            None if replica_id is None else domain_field(data, "replica_id"),
            ticket,
        )


@dataclass(frozen=True)
class SealPreCommitOutput:
    """What PC2 produces: the two commitments that go on chain."""

    comm_r: bytes
    comm_d: bytes

    def to_json(self) -> dict[str, Any]:
        """serde form: ``{"comm_r": [...], "comm_d": [...]}``."""
        return {"comm_r": domain_to_json(self.comm_r), "comm_d": domain_to_json(self.comm_d)}

    @classmethod
    def from_json(cls, obj: Any) -> SealPreCommitOutput:
        """Inverse of :meth:`to_json`."""
        data = json_object(obj, "PC2 output")
        return cls(domain_field(data, "comm_r"), domain_field(data, "comm_d"))


def map_nodes(path: Path, nodes: int, writable: bool = False) -> np.memmap[Any, np.dtype[np.uint8]]:
    """The first ``nodes`` 32-byte nodes of ``path`` as a ``(nodes, 32)`` memmap."""
    return np.memmap(path, dtype=np.uint8, mode="r+" if writable else "r",
                     shape=(nodes, NODE_BYTES))


def _copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` (unless they are the same file) and fsync it."""
    if target.exists() and os.path.samefile(source, target):
        return
    shutil.copyfile(source, target)
    with target.open("rb+") as f:
        os.fsync(f.fileno())


def label_configs(cache_dir: Path, proof: RegisteredSealProof) -> tuple[StoreConfig, ...]:
    """The store configs of the label layers, as rust lists them in PC1's output."""
    return tuple(StoreConfig(str(cache_dir), layer_id(layer), proof.nodes, 0)
                 for layer in range(1, proof.layers + 1))


def _config_of(layout: TreeLayout) -> StoreConfig:
    """A tree layout as rust's ``StoreConfig`` (``size`` = nodes of one base tree)."""
    return StoreConfig(str(layout.cache_dir), layout.store_id,
                       sum(layout.leaves_per_tree // layout.shape.base**k
                           for k in range(layout.height + 1)),
                       layout.rows_to_discard)


def seal_pre_commit_phase1(
    registered_proof: RegisteredSealProof | str | int,
    cache_dir: str | os.PathLike[str],
    unsealed_path: str | os.PathLike[str],
    sealed_path: str | os.PathLike[str],
    *,
    prover_id: bytes,
    sector_id: int,
    ticket: bytes,
    pieces: Sequence[PieceInfo],
    progress: Progress | None = None,
    kernels: SealKernels = REFERENCE_KERNELS,
) -> PreCommit1Output:
    """PreCommit1: tree_d, CommD check, replica id and the label layers.

    ``unsealed_path`` is the staged sector (padded layout, exactly ``sector_size`` bytes,
    as :func:`~sealagent.proofs.pieces.add_piece` writes it); ``pieces`` are the pieces
    in it, in order; space after them counts as zero filler pieces.  The unsealed file is
    copied to ``sealed_path``, which PC2 encodes in place.  Layers already complete for
    this replica are kept (an interrupted PC1 resumes).  ``kernels.labeler`` computes the
    layers, ``kernels.tree_d_builder`` tree_d, ``kernels.parents_builder`` the parent cache
    if this host has none yet (:mod:`sealagent.proofs.kernels`).
    """
    proof = resolve_proof(registered_proof)
    prover_id, ticket = bytes32("prover_id", prover_id), bytes32("ticket", ticket)
    _sector_number(sector_id)
    if not all(isinstance(p, PieceInfo) for p in pieces):
        raise InvalidInputError("pieces must be PieceInfo values")
    cache = existing_dir(cache_dir, "cache directory")
    unsealed = sector_file(unsealed_path, proof.sector_size, "unsealed file")
    expected_comm_d = generate_data_commitment(proof, pieces)
    sealed = Path(sealed_path)
    _copy_file(unsealed, sealed)
    tree_d = tree_d_layout(cache, proof.sector_size)
    report(progress, "tree-d", 0, 1)
    comm_d = kernels.tree_d_builder(tree_d, map_nodes(sealed, proof.nodes))
    report(progress, "tree-d", 1, 1)
    if comm_d != expected_comm_d:
        raise CommitmentMismatchError(
            f"the data's comm_d {comm_d.hex()} does not match the pieces' {expected_comm_d.hex()}"
        )
    replica_id = generate_replica_id(prover_id, sector_id, ticket, comm_d, proof.porep_id)
    done = completed_layers(cache, proof, replica_id)
    if done < proof.layers:
        parents = load_parents(proof, builder=kernels.parents_builder, progress=progress)
        create_label_layers(
            parents, replica_id, cache, layers=proof.layers, start_layer=done + 1,
            progress=None if progress is None
            else lambda layer, n, total: progress(layer_id(layer), n, total),
            labeler=kernels.labeler,
        )
    return PreCommit1Output(proof, label_configs(cache, proof), _config_of(tree_d), comm_d,
                            replica_id, ticket)


def open_layers(cache: Path, proof: RegisteredSealProof,
                replica_id: bytes | None) -> list[Nodes]:
    """Memory maps of every label layer; CorruptDataError if one is missing or truncated."""
    complete = completed_layers(cache, proof, replica_id)
    if complete < proof.layers:
        raise CorruptDataError(
            f"label layer {complete + 1} in {cache} is missing, truncated or of another replica"
        )
    return [map_nodes(layer_path(cache, layer), proof.nodes)
            for layer in range(1, proof.layers + 1)]


def seal_pre_commit_phase2(
    pc1_output: PreCommit1Output,
    cache_dir: str | os.PathLike[str],
    sealed_path: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    kernels: SealKernels = REFERENCE_KERNELS,
) -> SealPreCommitOutput:
    """PreCommit2: tree_c, the encoded replica, tree_r_last, ``comm_r``, ``p_aux``, ``t_aux``.

    ``comm_r = PoseidonMerkle_2(comm_c, comm_r_last)``.  The label layers and tree_d are
    read from ``cache_dir`` (paths in ``pc1_output`` are ignored, as rust re-roots them).
    ``kernels`` hashes the columns and builds tree_c and the replica with tree_r_last
    (:mod:`sealagent.proofs.kernels`); files, names and checks stay this function's.
    """
    if not isinstance(pc1_output, PreCommit1Output):
        raise InvalidInputError("pc1_output must be a PreCommit1Output")
    proof = pc1_output.registered_proof
    cache = existing_dir(cache_dir, "cache directory")
    sealed = sector_file(sealed_path, proof.sector_size, "sealed file")
    layers = open_layers(cache, proof, pc1_output.replica_id)
    tree_d = tree_d_layout(cache, proof.sector_size)
    if tree_d.root() != pc1_output.comm_d:
        raise CorruptDataError(f"tree_d in {cache} does not have PC1's comm_d as its root")

    tree_c = tree_c_layout(cache, proof.shape)
    columns_path = cache / "sc-02-data-tree-c-columns.tmp"
    try:
        columns = np.memmap(columns_path, dtype=np.uint8, mode="w+",
                            shape=(proof.nodes, NODE_BYTES))
        kernels.column_hasher(layers, columns, progress)
        report(progress, "tree-c-build", 0, 1)
        comm_c = kernels.tree_c_builder(tree_c, columns)
        report(progress, "tree-c-build", 1, 1)
        del columns
    finally:
        columns_path.unlink(missing_ok=True)

    tree_r_last = tree_r_last_layout(cache, proof.shape)
    replica = map_nodes(sealed, proof.nodes, writable=True)
    comm_r_last = kernels.tree_r_last_builder(
        tree_r_last, layers[-1], map_nodes(tree_d.paths()[0], proof.nodes), replica, progress)
    replica.flush()
    del replica
    with sealed.open("rb+") as f:
        os.fsync(f.fileno())
    report(progress, "tree-r-last", 1, 1)
    comm_r = poseidon_hash([comm_c, comm_r_last])

    PersistentAux(comm_c, comm_r_last).write(cache)
    TemporaryAux(label_configs(cache, proof), _config_of(tree_d), _config_of(tree_r_last),
                 _config_of(tree_c)).write(cache)
    return SealPreCommitOutput(comm_r, pc1_output.comm_d)
