"""Sector names, file types, directories and space estimates."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealagent.errors import ConfigError
from sealagent.storage.layout import fetch_temp_path, space_needed
from sealagent.vocab.registry import GIB, RegisteredSealProof
from sealagent.vocab.sectors import ALL_FILE_TYPES, FileType, SectorID, sector_path

P2K = RegisteredSealProof.StackedDrg2KiBV1_1
P32G = RegisteredSealProof.StackedDrg32GiBV1_1
P64G = RegisteredSealProof.StackedDrg64GiBV1_1


def test_sector_names() -> None:
    sector = SectorID(1000, 3)
    assert sector.name == "s-t01000-3" == str(sector)
    assert SectorID.parse("s-t01000-3") == sector
    for bad in ("s-t1000-3", "s-t01000-", "s-t0x-3", "../s-t01000-3", "s-t01000-3/"):
        with pytest.raises(ConfigError, match="not a sector file name"):
            SectorID.parse(bad)
    with pytest.raises(ConfigError):
        SectorID(-1, 3)
    with pytest.raises(ConfigError):
        SectorID(True, 3)


def test_file_types_match_lotus() -> None:
    assert [int(t) for t in ALL_FILE_TYPES] == [1, 2, 4, 8, 16, 32]
    assert [t.dir_name for t in ALL_FILE_TYPES] == [
        "unsealed", "sealed", "cache", "update", "update-cache", "piece"]
    assert FileType.parse("update-cache") is FileType.UPDATE_CACHE
    assert [t for t in ALL_FILE_TYPES if t.is_dir] == [FileType.CACHE, FileType.UPDATE_CACHE]
    both = FileType.CACHE | FileType.SEALED
    assert both.split() == (FileType.SEALED, FileType.CACHE)
    assert both.names == ("sealed", "cache")
    with pytest.raises(ConfigError, match="unknown file type"):
        FileType.parse("sealed/../cache")
    with pytest.raises(ConfigError, match="single file type"):
        _ = both.dir_name


def test_paths() -> None:
    sector = SectorID(1000, 3)
    assert sector_path("/data", FileType.CACHE, sector) == Path("/data/cache/s-t01000-3")
    assert fetch_temp_path("/data/cache/s-t01000-3") == Path("/data/cache/fetching/s-t01000-3")


def test_sealing_cache_of_32g_is_lotus_14_1_times_the_sector() -> None:
    # 11 layers + tree_d (2 S) + tree_c (8/7 S) + tree_r_last (8 files of 9,586,976 bytes)
    expected = 11 * 32 * GIB + (2 * 2**30 - 1) * 32 + 8 * (8**10 - 1) // 7 * 32
    expected += 8 * 9_586_976 + 64 * 1024
    assert space_needed(FileType.CACHE, P32G) == expected
    assert space_needed(FileType.CACHE, P32G) / (32 * GIB) == pytest.approx(14.1, abs=0.05)
    # Lotus reserves 484,472,310,988 bytes (14.1 x) for the same cache: within 0.5 %.
    assert space_needed(FileType.CACHE, P32G) == pytest.approx(484_472_310_988, rel=0.005)


def test_finalized_and_other_types() -> None:
    assert space_needed(FileType.CACHE, P32G, sealing=False) == 8 * 9_586_976 + 64 * 1024
    assert space_needed(FileType.CACHE, P64G, sealing=False) == 16 * 9_586_976 + 64 * 1024
    for single in (FileType.UNSEALED, FileType.SEALED, FileType.UPDATE, FileType.PIECE):
        assert space_needed(single, P64G) == 64 * GIB
    update_cache = space_needed(FileType.UPDATE_CACHE, P32G)
    assert update_cache / (32 * GIB) == pytest.approx(2.0, abs=0.01)
    combined = space_needed(FileType.SEALED | FileType.CACHE, P32G)
    assert combined == 32 * GIB + space_needed(FileType.CACHE, P32G)


def test_small_sectors_use_their_own_geometry() -> None:
    # 2 KiB: 2 layers, 64 leaves in one tree; rows_to_discard 1 keeps only the root.
    labels, tree_d, tree_c, tree_r_last = 2 * 2048, 127 * 32, 73 * 32, 1 * 32
    assert space_needed(FileType.CACHE, P2K) == labels + tree_d + tree_c + tree_r_last + 65536
    assert space_needed(FileType.CACHE, "StackedDrg2KiBV1") == space_needed(FileType.CACHE, P2K)


def test_wire_forms() -> None:
    assert FileType.from_wire(FileType.CACHE.to_wire()) is FileType.CACHE
    assert SectorID.from_wire(SectorID(1000, 7).to_wire()) == SectorID(1000, 7)
    for bad in ({"miner": 1000}, {"miner": "1000", "number": 7}, [1000, 7]):
        with pytest.raises(ConfigError):
            SectorID.from_wire(bad)
    with pytest.raises(ConfigError):
        FileType.from_wire(4)


@pytest.mark.parametrize("name", ["s-t01000-0\n", "s-t01000-\u0660", "s-t0\u06611-0",
                                  "s-t01000-" + "9" * 300, "s-t01000-18446744073709551616"])
def test_sector_names_are_ascii_digits_within_u64(name: str) -> None:
    with pytest.raises(ConfigError):
        SectorID.parse(name)


def test_largest_sector_number_parses() -> None:
    assert SectorID.parse(f"s-t01000-{2**64 - 1}").number == 2**64 - 1
