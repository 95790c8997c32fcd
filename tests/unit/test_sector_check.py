"""The size rules of ``sectors check`` and its verdict."""

from __future__ import annotations

from sealagent.manager.sector_check import CopyCheck, size_problem, verdict
from sealagent.storage.fetch import RemoteStat
from sealagent.storage.layout import AUX_BUDGET, space_needed, tree_r_last_bytes
from sealagent.vocab.registry import resolve_proof
from sealagent.vocab.sectors import FileType

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
