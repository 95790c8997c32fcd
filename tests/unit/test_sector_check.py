"""The size rules of ``sectors check``, the hosts asked for fresh challenges, the verdicts."""

from __future__ import annotations

import trio

from sealagent.manager.sector_check import (
    NO_PROVER,
    CopyCheck,
    ProofCheck,
    proof_verdict,
    prove_copies,
    size_problem,
    verdict,
)
from sealagent.proofs.post import fallback_challenges
from sealagent.storage.fetch import RemoteStat
from sealagent.storage.index import StorageIndex
from sealagent.storage.layout import AUX_BUDGET, space_needed, tree_r_last_bytes
from sealagent.storage.meta import PathMeta
from sealagent.vocab.registry import resolve_proof
from sealagent.vocab.sectors import FileType, SectorID

PROOF = resolve_proof("StackedDrg2KiBV1_1")


def test_sealed_and_unsealed_must_be_the_sector_size() -> None:
    for file_type in (FileType.SEALED, FileType.UNSEALED):
        assert size_problem(file_type, RemoteStat(2048, False), PROOF) is None
        assert "2047 bytes" in (size_problem(file_type, RemoteStat(2047, False), PROOF) or "")
        assert "directory" in (size_problem(file_type, RemoteStat(2048, True), PROOF) or "")


def test_the_cache_must_hold_its_tree_r_last_files() -> None:
    least = tree_r_last_bytes(PROOF)
    assert least + AUX_BUDGET == space_needed(FileType.CACHE, PROOF, sealing=False)
    assert size_problem(FileType.CACHE, RemoteStat(least + 100, True), PROOF) is None
    assert "less than" in (size_problem(FileType.CACHE, RemoteStat(least, True), PROOF) or "")
    assert "not a directory" in (size_problem(FileType.CACHE, RemoteStat(least + 100, False),
                                              PROOF) or "")


def test_one_good_copy_of_each_required_file_is_enough() -> None:
    bad_sealed = CopyCheck("a", FileType.SEALED, "u", 1, "short")
    good_sealed = CopyCheck("b", FileType.SEALED, "u", 2048, None)
    good_cache = CopyCheck("b", FileType.CACHE, "u", 9999, None)
    assert verdict([bad_sealed, good_sealed, good_cache]) == []
    assert verdict([bad_sealed, good_cache]) == ["no good copy of the sealed file"]
    assert verdict([]) == ["no good copy of the sealed file", "no good copy of the cache file"]


def test_fresh_challenges_need_one_host_with_both_files() -> None:
    """Sealed file on one host, cache on another: nobody can answer, and no request is
    sent (the hosts' URLs do not resolve)."""
    index = StorageIndex()
    index.attach(PathMeta("a", can_seal=True), "http://a.invalid/remote")
    index.attach(PathMeta("b", can_store=True), "http://b.invalid/remote")
    sector = SectorID(1000, 3)
    index.declare("a", sector, FileType.SEALED)
    index.declare("b", sector, FileType.CACHE)
    randomness = bytes(32)
    challenges, checks = trio.run(prove_copies, index, sector, PROOF, bytes(32), randomness, "")
    assert challenges == fallback_challenges(PROOF, randomness, 3)
    assert checks == [ProofCheck(None, (), NO_PROVER)]
    assert proof_verdict(checks) == ["no copy answered fresh challenges with a proof that "
                                     "verifies"]


def test_one_verified_answer_is_enough() -> None:
    good, bad = ProofCheck("u", ("a",), None), ProofCheck("v", ("b",), "challenge 0: damaged")
    assert proof_verdict([bad, good]) == []
    assert proof_verdict([bad]) != []
    assert bad.to_json() == {"url": "v", "path_ids": ["b"], "ok": False,
                             "problem": "challenge 0: damaged"}
