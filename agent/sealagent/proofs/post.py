"""PoSt-style vanilla proofs of a stored sector: fresh challenges answered from tree_r_last.

This is what ``lotus-miner proving check --slow`` runs on each sector (the rules are
docs/porep.md §12), after storage-proofs-post's ``fallback`` module (``vanilla.rs``) and
filecoin-proofs' ``generate_fallback_sector_challenges`` / ``generate_single_vanilla_proof``:

* **challenges** (:func:`fallback_challenges`): challenge ``n`` of sector number ``s`` under
  the 32-byte randomness ``r`` is ``u64_le(SHA256(r || u64_le(s) || u64_le(n))[0..8]) mod
  nodes``; any node, 0 included, can be challenged.  A Window PoSt draws
  :data:`WINDOW_POST_CHALLENGE_COUNT` per sector, a Winning PoSt
  :data:`WINNING_POST_CHALLENGE_COUNT`.
* **proof** (:func:`generate_sector_proof`, run where the files are): for every challenge,
  the replica leaf read from the sealed file and its inclusion proof in tree_r_last; the
  rows the cache does not keep (``rows_to_discard``, from ``t_aux``) are rebuilt from the
  sealed file for the one segment holding the leaf and checked against the row the cache
  keeps.  ``comm_c`` and ``comm_r_last`` come from ``p_aux``.  A proof that does not hash
  up to ``comm_r_last`` is not handed out: the error names the damaged file.
* **verification** (:func:`verify_sector_proof`, by whoever holds the sector's CommR):
  ``Poseidon(comm_c, comm_r_last)`` is CommR, and every inclusion proof has the tree's
  shape, proves its challenged leaf and hashes up to ``comm_r_last``.

:class:`SectorPoStProof` mirrors rust's ``SectorProof`` and its serde JSON.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sealagent.errors import CorruptDataError, InvalidInputError
from sealagent.proofs.cache_files import PersistentAux, TemporaryAux, existing_dir, sector_file
from sealagent.proofs.challenges import bytes32
from sealagent.proofs.field import fr_from_bytes
from sealagent.proofs.merkle import (
    POSEIDON_HASHER,
    MerkleProof,
    Nodes,
    TreeLayout,
    domain_from_json,
    domain_to_json,
    tree_r_last_layout,
)
from sealagent.proofs.poseidon import poseidon_hash
from sealagent.proofs.seal import map_nodes
from sealagent.proofs.vanilla import (
    canonical_domains,
    check_opening_shape,
    require,
    tree_arities,
)
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof

WINDOW_POST_CHALLENGE_COUNT: Final = 10
"""Challenges per sector in a Window PoSt (filecoin-proofs ``WINDOW_POST_CHALLENGE_COUNT``)."""

WINNING_POST_CHALLENGE_COUNT: Final = 66
"""Challenges in a Winning PoSt (filecoin-proofs ``WINNING_POST_CHALLENGE_COUNT``)."""


def fresh_randomness() -> bytes:
    """32 random bytes that are a canonical field element (the top two bits cleared), as
    Lotus draws them for ``proving check --slow``."""
    raw = bytearray(secrets.token_bytes(32))
    raw[31] &= 0x3F
    return bytes(raw)


def fallback_challenges(registered_proof: RegisteredSealProof | str | int, randomness: bytes,
                        sector_number: int, count: int = WINDOW_POST_CHALLENGE_COUNT
                        ) -> list[int]:
    """The ``count`` leaves a PoSt under ``randomness`` challenges in sector ``sector_number``.

    ``randomness`` must be a canonical field element (rust's ``as_safe_commitment``).
    """
    proof = resolve_proof(registered_proof)
    randomness = bytes32("randomness", randomness)
    fr_from_bytes(randomness)
    if not 0 <= sector_number < 1 << 64:
        raise InvalidInputError(f"sector number {sector_number} does not fit in 64 bits")
    if count < 1:
        raise InvalidInputError(f"the challenge count must be positive, got {count}")
    prefix = hashlib.sha256(randomness + struct.pack("<Q", sector_number))
    challenges = []
    for n in range(count):
        h = prefix.copy()
        h.update(struct.pack("<Q", n))
        challenges.append(int.from_bytes(h.digest()[:8], "little") % proof.nodes)
    return challenges


@dataclass(frozen=True)
class SectorPoStProof:
    """One sector's answer to its challenges (rust's fallback ``SectorProof``)."""

    inclusion_proofs: tuple[MerkleProof, ...]
    comm_c: bytes
    comm_r_last: bytes

    def to_json(self) -> dict[str, Any]:
        """serde form: ``{"inclusion_proofs": [...], "comm_c": [..], "comm_r_last": [..]}``."""
        return {"inclusion_proofs": [p.to_json() for p in self.inclusion_proofs],
                "comm_c": domain_to_json(self.comm_c),
                "comm_r_last": domain_to_json(self.comm_r_last)}

    @classmethod
    def from_json(cls, obj: Any) -> SectorPoStProof:
        """Parse the serde form; InvalidInputError if malformed."""
        if not isinstance(obj, dict) or not isinstance(obj.get("inclusion_proofs"), list):
            raise InvalidInputError('a sector proof must be {"inclusion_proofs": [...], ...}')
        if "comm_c" not in obj or "comm_r_last" not in obj:
            raise InvalidInputError("a sector proof needs comm_c and comm_r_last")
        return cls(tuple(MerkleProof.from_json(p, POSEIDON_HASHER)
                         for p in obj["inclusion_proofs"]),
                   domain_from_json(obj["comm_c"]), domain_from_json(obj["comm_r_last"]))


def generate_sector_proof(
    registered_proof: RegisteredSealProof | str | int,
    cache_dir: str | os.PathLike[str],
    sealed_path: str | os.PathLike[str],
    challenges: Sequence[int],
) -> SectorPoStProof:
    """Answer ``challenges`` from a sector's stored files (``generate_single_vanilla_proof``).

    Reads ``p_aux``, ``t_aux`` and the tree-r-last files in ``cache_dir`` and the sealed
    file.  A missing sealed file raises InvalidInputError.  A sealed file of the wrong
    size, missing or short cache files, and every proof that does not hash up to
    ``p_aux``'s comm_r_last raise CorruptDataError, saying which challenge and which file
    is damaged (as rust's ``vanilla_proof`` checks each proof it generates).
    """
    proof = resolve_proof(registered_proof)
    cache = existing_dir(cache_dir, "cache directory")
    sealed = sector_file(sealed_path, proof.sector_size, "sealed file")
    p_aux, t_aux = PersistentAux.read(cache), TemporaryAux.read(cache)
    tree = tree_r_last_layout(cache, proof.shape, t_aux.tree_r_last_config.rows_to_discard)
    tree.base_roots()  # every tree-r-last file is there, with its size
    replica = map_nodes(sealed, proof.nodes)
    proofs = []
    for n, challenge in enumerate(challenges):
        if not 0 <= challenge < proof.nodes:
            raise InvalidInputError(f"challenge {n}: node {challenge} is outside the sector "
                                    f"(0..{proof.nodes - 1})")
        proofs.append(_open(tree, replica, challenge, p_aux.comm_r_last,
                            f"challenge {n} (node {challenge})", sealed))
    return SectorPoStProof(tuple(proofs), p_aux.comm_c, p_aux.comm_r_last)


def _open(tree: TreeLayout, replica: Nodes, challenge: int, comm_r_last: bytes, what: str,
          sealed: Path) -> MerkleProof:
    """The inclusion proof of one challenged leaf, checked against ``comm_r_last``."""
    tree_file = tree.paths()[challenge // tree.leaves_per_tree]
    try:
        opening = tree.prove(challenge, replica)
    except CorruptDataError as exc:
        # The sealed leaves of the segment do not hash to the node the file keeps above
        # them: if that node's own path in the file reaches comm_r_last, the file is sound.
        row = tree.first_stored_row
        stored = tree.prove_stored(row, challenge // tree.shape.base**row)
        culprit = (f"the sealed file {sealed}" if stored.verify() and stored.root == comm_r_last
                   else f"the tree-r-last file {tree_file} (or p_aux)")
        raise CorruptDataError(f"{what}: {culprit} is damaged: {exc}") from None
    if not (opening.verify() and opening.root == comm_r_last):
        raise CorruptDataError(f"{what}: the tree-r-last file {tree_file} (or p_aux) is "
                               "damaged: the path it keeps does not hash to p_aux's comm_r_last")
    return opening


def verify_sector_proof(
    sector_proof: SectorPoStProof,
    *,
    registered_proof: RegisteredSealProof | str | int,
    comm_r: bytes,
    challenges: Sequence[int],
) -> None:
    """Check one sector's PoSt vanilla proof against its CommR; raise VerificationError
    saying which challenge failed and why (rust's ``FallbackPoSt::verify`` for one sector)."""
    proof = resolve_proof(registered_proof)
    comm_r = bytes32("comm_r", comm_r)
    comm_c, comm_r_last = sector_proof.comm_c, sector_proof.comm_r_last
    require(canonical_domains(comm_c, comm_r_last)
            and poseidon_hash([comm_c, comm_r_last]) == comm_r,
            "comm_c and comm_r_last (p_aux) do not hash to the sector's CommR")
    openings = sector_proof.inclusion_proofs
    require(len(openings) == len(challenges),
            f"{len(openings)} inclusion proofs for {len(challenges)} challenges")
    arities, kind = tree_arities(proof)
    for n, (challenge, opening) in enumerate(zip(challenges, openings, strict=True)):
        what = f"challenge {n} (node {challenge})"
        require(opening.root == comm_r_last,
                f"{what}: the tree-r-last root differs from comm_r_last (p_aux)")
        check_opening_shape(opening, what, challenge, POSEIDON_HASHER, arities, kind)
        require(opening.verify(), f"{what}: the sealed leaf and its tree-r-last path do not "
                                  "hash to comm_r_last")
