"""``sectors check``: re-verify a sector from its stored files.

As ``lotus-miner proving check`` does without ``--slow``: every copy of the sector's files
that the storage index knows of is looked at where it is (``/remote/stat`` on the host
that holds it), and each must be there with the right size:

- the sealed file (and the unsealed one, where a copy is kept) is exactly the sector size;
- the cache holds at least the ``tree-r-last`` files
  (:func:`~sealagent.storage.layout.tree_r_last_bytes`) plus ``p_aux`` and ``t_aux``.

The sector passes when each of its required files (sealed and cache) has at least one
copy that passes; a copy that fails is reported with the reason, whatever the verdict.

With ``--slow`` (:func:`prove_copies`), as ``proving check --slow`` does, fresh Window PoSt
challenges are drawn over the sector from new randomness
(:func:`sealagent.proofs.post.fallback_challenges`), every host that holds both the
sealed file and the cache answers them from those files over its ``/remote``
(``POST /remote/vanilla/single``), and the manager verifies each answer against the
CommR of the sector record (:func:`sealagent.proofs.post.verify_sector_proof`).  The
sector then also needs one host whose answer verifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import trio

from sealagent.errors import SealAgentError
from sealagent.proofs.post import SectorPoStProof, fallback_challenges, verify_sector_proof
from sealagent.storage.fetch import RemoteClient, RemoteStat
from sealagent.storage.index import StorageIndex
from sealagent.storage.layout import tree_r_last_bytes
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import SECTOR_FILES, FileType, SectorID

REQUIRED: Final = FileType.SEALED | FileType.CACHE
"""The files a sealed sector cannot be proven without."""

NO_PROVER: Final = "no host holds both the sealed file and the cache to answer challenges"


@dataclass(frozen=True)
class CopyCheck:
    """The verdict on one copy of one sector file."""

    path_id: str
    file_type: FileType
    url: str | None
    size: int | None
    problem: str | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form ``Sectors.Check`` answers with."""
        return {"path_id": self.path_id, "file_type": self.file_type.dir_name,
                "url": self.url, "size": self.size, "ok": self.problem is None,
                "problem": self.problem}


def size_problem(file_type: FileType, stat: RemoteStat, proof: RegisteredSealProof) -> str | None:
    """What is wrong with a stored file of this type and size (None: nothing)."""
    if file_type is FileType.CACHE:
        if not stat.is_dir:
            return "the cache is a file, not a directory"
        least = tree_r_last_bytes(proof)
        if stat.size <= least:
            return f"the cache holds {stat.size} bytes, less than its tree-r-last files ({least})"
        return None
    if stat.is_dir:
        return f"the {file_type.dir_name} file is a directory"
    if stat.size != proof.sector_size:
        return f"{stat.size} bytes, expected the sector size {proof.sector_size}"
    return None


async def check_copies(index: StorageIndex, sector: SectorID, proof: RegisteredSealProof,
                       token: str) -> list[CopyCheck]:
    """Look at every indexed copy of ``sector``'s files where it is stored."""
    checks: list[CopyCheck] = []
    async with RemoteClient(token) as client:
        for location in index.find(sector, SECTOR_FILES):
            for file_type in location.file_types.split():
                if not location.urls:
                    checks.append(CopyCheck(location.path_id, file_type, None, None,
                                            "the path has no URL to reach it at"))
                    continue
                url = f"{location.urls[0]}/{file_type.dir_name}/{sector.name}"
                try:
                    stat = await client.stat(url)
                except SealAgentError as exc:
                    checks.append(CopyCheck(location.path_id, file_type, url, None, str(exc)))
                    continue
                checks.append(CopyCheck(location.path_id, file_type, url, stat.size,
                                        size_problem(file_type, stat, proof)))
    return checks


def verdict(checks: list[CopyCheck]) -> list[str]:
    """The reasons a sector with these copies cannot be proven (empty: it can)."""
    good = FileType(0)
    for check in checks:
        if check.problem is None:
            good |= check.file_type
    return [f"no good copy of the {file_type.dir_name} file"
            for file_type in REQUIRED.split() if not file_type & good]


@dataclass(frozen=True)
class ProofCheck:
    """The verdict on one host's answer to fresh challenges (``--slow``)."""

    url: str | None
    path_ids: tuple[str, ...]
    problem: str | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form ``Sectors.Check`` answers with under ``proofs``."""
        return {"url": self.url, "path_ids": list(self.path_ids), "ok": self.problem is None,
                "problem": self.problem}


def _provers(index: StorageIndex, sector: SectorID) -> dict[str, tuple[str, ...]]:
    """The ``/remote`` URL of every host holding both the sealed file and the cache, with
    the IDs of its paths that hold them."""
    types: dict[str, FileType] = {}
    paths: dict[str, list[str]] = {}
    for location in index.find(sector, REQUIRED):
        if location.urls:
            url = location.urls[0]
            types[url] = types.get(url, FileType(0)) | location.file_types
            paths.setdefault(url, []).append(location.path_id)
    return {url: tuple(paths[url]) for url, held in types.items() if held & REQUIRED == REQUIRED}


async def _prove_one(client: RemoteClient, url: str, sector: SectorID,
                     proof: RegisteredSealProof, comm_r: bytes,
                     challenges: list[int]) -> str | None:
    """Ask the host at ``url`` to answer ``challenges`` and verify the answer; the reason
    it fails (None: it verifies)."""
    try:
        answer = SectorPoStProof.from_json(
            await client.vanilla_proof(url, sector.name, proof.name, challenges))
        await trio.to_thread.run_sync(lambda: verify_sector_proof(
            answer, registered_proof=proof, comm_r=comm_r, challenges=challenges))
    except SealAgentError as exc:
        return str(exc)
    return None


async def prove_copies(index: StorageIndex, sector: SectorID, proof: RegisteredSealProof,
                       comm_r: bytes, randomness: bytes, token: str
                       ) -> tuple[list[int], list[ProofCheck]]:
    """Draw fresh challenges from ``randomness`` and have every host holding the sector's
    sealed file and cache answer them; returns the challenges and each host's verdict."""
    challenges = fallback_challenges(proof, randomness, sector.number)
    provers = _provers(index, sector)
    if not provers:
        return challenges, [ProofCheck(None, (), NO_PROVER)]
    checks = []
    async with RemoteClient(token) as client:
        for url, path_ids in sorted(provers.items()):
            problem = await _prove_one(client, url, sector, proof, comm_r, challenges)
            checks.append(ProofCheck(url, path_ids, problem))
    return challenges, checks


def proof_verdict(checks: list[ProofCheck]) -> list[str]:
    """Why fresh challenges could not be answered (empty: one host's answer verified)."""
    if any(check.problem is None for check in checks):
        return []
    return ["no copy answered fresh challenges with a proof that verifies"]
