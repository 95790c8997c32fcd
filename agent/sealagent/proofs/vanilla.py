"""Vanilla proofs of one challenged node (storage-proofs-porep ``stacked::Proof``).

The rules are docs/porep.md §9.4–§9.5.

For a challenge ``c`` the proof opens:

* ``comm_d_proofs``: the data node ``c`` in tree_d (SHA256 binary tree);
* ``comm_r_last_proof``: the replica node ``c`` in tree_r_last (Poseidon);
* ``replica_column_proofs``: the column (all ``L`` labels) of ``c`` and of its 6 DRG and 8
  expander parents, each with its inclusion proof in tree_c;
* ``labeling_proofs``: per layer, the 37 parent labels hashed into ``label[ℓ][c]``;
* ``encoding_proof``: the last layer's labeling data again (the encoding key).

The classes mirror rust's serde JSON, field for field, so a proof made here reads in
rust-fil-proofs (and curio) and the other way round.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sealagent.errors import InvalidInputError, VerificationError
from sealagent.proofs.field import fr_from_bytes, fr_to_bytes
from sealagent.proofs.graph import BASE_DEGREE, EXP_DEGREE, StackedGraph
from sealagent.proofs.merkle import (
    POSEIDON_HASHER,
    SHA256_HASHER,
    MerkleProof,
    TreeHasher,
    TreeLayout,
    TreeShape,
    domain_from_json,
    domain_to_json,
    tree_height,
)
from sealagent.proofs.poseidon import poseidon_hash
from sealagent.proofs.seal import Nodes
from sealagent.vocab.registry import RegisteredSealProof

TOTAL_PARENTS: Final = 37
"""Parent labels hashed into every label (the parent list repeated cyclically)."""


def _field(obj: Any, key: str, what: str) -> Any:
    """``obj[key]`` of a JSON object, with InvalidInputError when absent."""
    if not isinstance(obj, Mapping) or key not in obj:
        raise InvalidInputError(f"{what} lacks {key!r}")
    return obj[key]


def _uint(obj: Any, key: str, what: str) -> int:
    """A non-negative integer field."""
    value = _field(obj, key, what)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{what}.{key} must be a non-negative integer")
    return value


def _list(obj: Any, key: str, what: str) -> list[Any]:
    """A list field."""
    value = _field(obj, key, what)
    if not isinstance(value, list):
        raise InvalidInputError(f"{what}.{key} must be a list")
    return value


def _domains(values: list[Any], what: str) -> tuple[bytes, ...]:
    """A list of 32-byte domains."""
    try:
        return tuple(domain_from_json(v) for v in values)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{what}: {exc}") from None


@dataclass(frozen=True)
class Column:
    """The labels of one node in every layer (``Column{index, rows, _h}``)."""

    index: int
    rows: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """serde form."""
        return {"index": self.index, "rows": [domain_to_json(r) for r in self.rows], "_h": None}

    @classmethod
    def from_json(cls, obj: Any) -> Column:
        """Parse the serde form."""
        return cls(_uint(obj, "index", "column"), _domains(_list(obj, "rows", "column"), "row"))


@dataclass(frozen=True)
class ColumnProof:
    """A column and its inclusion proof in tree_c."""

    column: Column
    inclusion_proof: MerkleProof

    def to_json(self) -> dict[str, Any]:
        """serde form."""
        return {"column": self.column.to_json(), "inclusion_proof": self.inclusion_proof.to_json()}

    @classmethod
    def from_json(cls, obj: Any) -> ColumnProof:
        """Parse the serde form."""
        return cls(Column.from_json(_field(obj, "column", "column proof")),
                   MerkleProof.from_json(_field(obj, "inclusion_proof", "column proof"),
                                         POSEIDON_HASHER))


@dataclass(frozen=True)
class LabelingProof:
    """The data a label is hashed from (rust's ``LabelingProof`` and ``EncodingProof``)."""

    parents: tuple[bytes, ...]
    layer_index: int
    node: int

    def create_label(self, replica_id: bytes) -> bytes:
        """``trim(SHA256(replica_id || u32_be(layer) || u64_be(node) || 0^20 || parents))``."""
        h = hashlib.sha256(replica_id + struct.pack(">IQ", self.layer_index, self.node)
                           + bytes(20))
        for parent in self.parents:
            h.update(parent)
        digest = bytearray(h.digest())
        digest[31] &= 0x3F
        return bytes(digest)

    def to_json(self) -> dict[str, Any]:
        """serde form (``_h`` is skipped by serde)."""
        return {"parents": [domain_to_json(p) for p in self.parents],
                "layer_index": self.layer_index, "node": self.node}

    @classmethod
    def from_json(cls, obj: Any) -> LabelingProof:
        """Parse the serde form."""
        what = "labeling proof"
        return cls(_domains(_list(obj, "parents", what), "parent"),
                   _uint(obj, "layer_index", what), _uint(obj, "node", what))


@dataclass(frozen=True)
class VanillaProof:
    """Every opening for one challenge (``stacked::Proof``)."""

    comm_d_proofs: MerkleProof
    comm_r_last_proof: MerkleProof
    c_x: ColumnProof
    drg_parents: tuple[ColumnProof, ...]
    exp_parents: tuple[ColumnProof, ...]
    labeling_proofs: tuple[LabelingProof, ...]
    encoding_proof: LabelingProof

    def to_json(self) -> dict[str, Any]:
        """serde form (docs/porep.md §9.6)."""
        return {
            "comm_d_proofs": self.comm_d_proofs.to_json(),
            "comm_r_last_proof": self.comm_r_last_proof.to_json(),
            "replica_column_proofs": {
                "c_x": self.c_x.to_json(),
                "drg_parents": [p.to_json() for p in self.drg_parents],
                "exp_parents": [p.to_json() for p in self.exp_parents],
            },
            "labeling_proofs": [p.to_json() for p in self.labeling_proofs],
            "encoding_proof": self.encoding_proof.to_json(),
        }

    @classmethod
    def from_json(cls, obj: Any) -> VanillaProof:
        """Parse the serde form; InvalidInputError if malformed."""
        what = "vanilla proof"
        columns = _field(obj, "replica_column_proofs", what)
        return cls(
            MerkleProof.from_json(_field(obj, "comm_d_proofs", what), SHA256_HASHER),
            MerkleProof.from_json(_field(obj, "comm_r_last_proof", what), POSEIDON_HASHER),
            ColumnProof.from_json(_field(columns, "c_x", "replica column proofs")),
            tuple(ColumnProof.from_json(p) for p in _list(columns, "drg_parents", "columns")),
            tuple(ColumnProof.from_json(p) for p in _list(columns, "exp_parents", "columns")),
            tuple(LabelingProof.from_json(p) for p in _list(obj, "labeling_proofs", what)),
            LabelingProof.from_json(_field(obj, "encoding_proof", what)),
        )

    @property
    def comm_c(self) -> bytes:
        """The tree_c root this proof opens against."""
        return self.c_x.inclusion_proof.root

    @property
    def comm_r_last(self) -> bytes:
        """The tree_r_last root this proof opens against."""
        return self.comm_r_last_proof.root


def repeated_parents(parents: Sequence[bytes]) -> tuple[bytes, ...]:
    """The first 37 entries of ``parents`` repeated cyclically."""
    return tuple(parents[i % len(parents)] for i in range(TOTAL_PARENTS))


def layer_parent_labels(
    drg: Sequence[Column], exp: Sequence[Column], layer: int
) -> tuple[bytes, ...]:
    """The 37 labels hashed into a label of ``layer``, taken from the parents' columns.

    Base parents are read in the same layer, expander parents in the previous one;
    layer 1 has only the base parents.
    """
    labels = [col.rows[layer - 1] for col in drg]
    if layer > 1:
        labels += [col.rows[layer - 2] for col in exp]
    return repeated_parents(labels)


@dataclass(frozen=True)
class SealedTrees:
    """What proving reads: layers, the replica and the three trees of one sector."""

    registered_proof: RegisteredSealProof
    layers: Sequence[Nodes]
    replica: Nodes
    tree_d: TreeLayout
    tree_c: TreeLayout
    tree_r_last: TreeLayout
    graph: StackedGraph

    def column(self, node: int) -> Column:
        """The labels of ``node`` in every layer."""
        return Column(node, tuple(bytes(layer[node]) for layer in self.layers))

    def column_proof(self, node: int) -> ColumnProof:
        """``node``'s column and its tree_c opening."""
        return ColumnProof(self.column(node), self.tree_c.prove(node))

    def prove(self, challenge: int) -> VanillaProof:
        """The vanilla proof of ``challenge`` (rust's ``prove_layers_generate``)."""
        nodes = self.registered_proof.nodes
        if not 0 < challenge < nodes:
            raise InvalidInputError(f"challenge {challenge} is not in [1, {nodes - 1}]")
        parents = self.graph.parents(challenge)
        drg = tuple(self.column_proof(p) for p in parents[:BASE_DEGREE])
        exp = tuple(self.column_proof(p) for p in parents[BASE_DEGREE:])
        drg_cols, exp_cols = [p.column for p in drg], [p.column for p in exp]
        labeling = tuple(
            LabelingProof(layer_parent_labels(drg_cols, exp_cols, layer), layer, challenge)
            for layer in range(1, len(self.layers) + 1)
        )
        return VanillaProof(
            comm_d_proofs=self.tree_d.prove(challenge),
            comm_r_last_proof=self.tree_r_last.prove(challenge, self.replica),
            c_x=self.column_proof(challenge),
            drg_parents=drg,
            exp_parents=exp,
            labeling_proofs=labeling,
            encoding_proof=labeling[-1],
        )


def require(condition: bool, reason: str) -> None:
    """Raise VerificationError with ``reason`` unless ``condition``."""
    if not condition:
        raise VerificationError(reason)


def tree_arities(registered_proof: RegisteredSealProof) -> tuple[tuple[int, ...], str]:
    """Per-level arities and serde variant of a tree_c / tree_r_last proof of this proof."""
    shape = TreeShape.of(registered_proof.shape)
    height = tree_height(registered_proof.shape.base_tree_leaves, shape.base)
    arities = (shape.base,) * height + tuple(a for a in (shape.sub, shape.top) if a)
    kind = "Single" if not shape.sub else ("Sub" if not shape.top else "Top")
    return arities, kind


def check_opening_shape(proof: MerkleProof, what: str, index: int, hasher: TreeHasher,
                        arities: tuple[int, ...], kind: str) -> None:
    """An inclusion proof's hasher, variant, arities and proven leaf (not yet its hashes)."""
    require(proof.hasher is hasher, f"{what}: wrong hash function")
    require(proof.kind == kind, f"{what}: a {proof.kind} proof where {kind} is expected")
    require(proof.arities == arities,
             f"{what}: path arities {proof.arities}, expected {arities}")
    require(all(0 <= el.index < el.arity for el in proof.path),
             f"{what}: a path index is outside its group")
    require(proof.proves_index(index), f"{what}: proves leaf {proof.leaf_index()}, not {index}")


def _column_hash(column: Column, what: str) -> bytes:
    """The tree_c leaf of ``column``: Poseidon of its rows (VerificationError if malformed)."""
    try:
        return POSEIDON_HASHER.hash_children(column.rows)
    except InvalidInputError as exc:
        raise VerificationError(f"{what}: {exc}") from None


def _check_label(proof: LabelingProof, what: str, layer: int, challenge: int,
                 expected_parents: tuple[bytes, ...], replica_id: bytes) -> bytes:
    """A labeling proof: its coordinates, its parents (from the columns); returns the label."""
    require(proof.layer_index == layer, f"{what}: layer {proof.layer_index}, expected {layer}")
    require(proof.node == challenge, f"{what}: node {proof.node}, expected {challenge}")
    require(len(proof.parents) == TOTAL_PARENTS,
             f"{what}: {len(proof.parents)} parents, expected {TOTAL_PARENTS}")
    require(proof.parents == expected_parents,
             f"{what}: parent labels differ from the opened parent columns")
    return proof.create_label(replica_id)


def _check_columns(proof: VanillaProof, challenge: int, parents: Sequence[int],
                   registered_proof: RegisteredSealProof) -> None:
    """The 15 column openings and the replica opening: indexes, leaves, paths, roots."""
    layers = registered_proof.layers
    arities, kind = tree_arities(registered_proof)
    require(len(proof.drg_parents) == BASE_DEGREE and len(proof.exp_parents) == EXP_DEGREE,
             "replica column proofs must open 6 DRG and 8 expander parents")
    columns = (proof.c_x, *proof.drg_parents, *proof.exp_parents)
    names = ["c_x", *(f"parent column {i}" for i in range(len(columns) - 1))]
    for col, name, node in zip(columns, names, (challenge, *parents), strict=True):
        require(col.column.index == node,
                 f"{name}: column of node {col.column.index}, expected {node}")
        require(len(col.column.rows) == layers,
                 f"{name}: {len(col.column.rows)} rows, expected {layers}")
        check_opening_shape(col.inclusion_proof, name, node, POSEIDON_HASHER, arities, kind)
    check_opening_shape(proof.comm_r_last_proof, "comm_r_last proof", challenge, POSEIDON_HASHER,
                 arities, kind)
    for col, name in zip(columns, names, strict=True):
        require(col.inclusion_proof.leaf == _column_hash(col.column, name),
                 f"{name}: leaf is not the column hash")
    openings = [col.inclusion_proof for col in columns] + [proof.comm_r_last_proof]
    for opening, name in zip(openings, [*names, "comm_r_last proof"], strict=True):
        require(opening.verify(), f"{name}: the path does not hash to its root")
        if opening is not proof.comm_r_last_proof:
            require(opening.root == proof.comm_c, f"{name}: root differs from comm_c")


def verify_vanilla_proof(
    proof: VanillaProof,
    challenge: int,
    *,
    registered_proof: RegisteredSealProof,
    replica_id: bytes,
    comm_d: bytes,
    comm_r: bytes,
    parents_of: Callable[[int], list[int]],
) -> None:
    """Check one vanilla proof; raise VerificationError saying what is wrong.

    This is rust's ``Proof::verify`` plus what the SNARK circuit enforces and the vanilla
    verifier does not: the 37 parent labels of every labeling (and the encoding) proof
    must be exactly the labels of the opened parent columns, each column must have ``L``
    rows and every path must have the tree's shape.  ``parents_of(c)`` gives the 14
    graph parents of ``c``.
    """
    layers, nodes = registered_proof.layers, registered_proof.nodes
    require(0 < challenge < nodes, f"challenge {challenge} is not in [1, {nodes - 1}]")
    comm_c, comm_r_last = proof.comm_c, proof.comm_r_last
    require(canonical_domains(comm_c, comm_r_last)
             and poseidon_hash([comm_c, comm_r_last]) == comm_r,
             "comm_r is not H(comm_c, comm_r_last) of the opened trees")

    check_opening_shape(proof.comm_d_proofs, "comm_d proof", challenge, SHA256_HASHER,
                 (2,) * tree_height(nodes, 2), "Single")
    require(proof.comm_d_proofs.verify(), "comm_d proof: the path does not hash to its root")
    require(proof.comm_d_proofs.root == comm_d, "comm_d proof: root differs from comm_d")
    _check_columns(proof, challenge, parents_of(challenge), registered_proof)

    require(len(proof.labeling_proofs) == layers,
             f"{len(proof.labeling_proofs)} labeling proofs, expected {layers}")
    drg = [p.column for p in proof.drg_parents]
    exp = [p.column for p in proof.exp_parents]
    for layer, labeling in enumerate(proof.labeling_proofs, start=1):
        label = _check_label(labeling, f"labeling proof {layer}", layer, challenge,
                             layer_parent_labels(drg, exp, layer), replica_id)
        require(label == proof.c_x.column.rows[layer - 1],
                 f"labeling proof {layer}: label differs from c_x row {layer}")

    key = _check_label(proof.encoding_proof, "encoding proof", layers, challenge,
                       layer_parent_labels(drg, exp, layers), replica_id)
    try:
        encoded = fr_to_bytes(fr_from_bytes(key) + fr_from_bytes(proof.comm_d_proofs.leaf))
    except InvalidInputError as exc:
        raise VerificationError(f"encoding proof: {exc}") from None
    require(encoded == proof.comm_r_last_proof.leaf,
             "encoding proof: key + data leaf differs from the replica leaf")


def canonical_domains(*values: bytes) -> bool:
    """Whether every value is a canonical field element."""
    try:
        for value in values:
            fr_from_bytes(value)
    except InvalidInputError:
        return False
    return True
