"""Local storage paths: sectorstore.json, space, reservations, storage.json."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sealagent.errors import ConfigError, NoSpaceError, StorageError
from sealagent.storage.layout import space_needed
from sealagent.storage.meta import FsStat, PathMeta
from sealagent.storage.paths import (
    SECTORSTORE_FILE,
    LocalPath,
    RepoStorage,
    init_path,
    open_path,
)
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID

P2K = RegisteredSealProof.StackedDrg2KiBV1_1
SECTOR = SectorID(1000, 7)


def test_init_writes_lotus_sectorstore_json(tmp_path: Path) -> None:
    path = init_path(tmp_path / "seal", can_seal=True, can_store=False, weight=20,
                     max_storage=10**9, groups=["g1"], allow_to=["g2"],
                     allow_types=["cache", "sealed"], path_id="p-1")
    data = json.loads((tmp_path / "seal" / SECTORSTORE_FILE).read_text())
    assert data == {"ID": "p-1", "Weight": 20, "CanSeal": True, "CanStore": False,
                    "MaxStorage": 10**9, "Groups": ["g1"], "AllowTo": ["g2"],
                    "AllowTypes": ["cache", "sealed"], "DenyTypes": [], "AllowMiners": [],
                    "DenyMiners": []}
    assert sorted(p.name for p in (tmp_path / "seal").iterdir()) == [
        "cache", "piece", "sealed", SECTORSTORE_FILE, "unsealed", "update", "update-cache"]
    assert open_path(tmp_path / "seal").meta == path.meta
    with pytest.raises(StorageError, match="already a storage path"):
        init_path(tmp_path / "seal", can_seal=True, can_store=False)
    with pytest.raises(ConfigError, match="unknown file type"):
        init_path(tmp_path / "other", can_seal=True, can_store=False, deny_types=["bogus"])


def test_open_accepts_lotus_nulls_and_refuses_corrupt_metadata(tmp_path: Path) -> None:
    (tmp_path / SECTORSTORE_FILE).write_text(json.dumps({
        "ID": "x", "Weight": 10, "CanSeal": True, "CanStore": True, "MaxStorage": 0,
        "Groups": None, "AllowTo": None, "AllowTypes": None, "DenyTypes": None}))
    assert open_path(tmp_path).meta == PathMeta("x", 10, True, True)
    for content, message in [
        ("{", "cannot read"),
        ("[]", "expected a JSON object"),
        ('{"Weight": 1}', "missing ID"),
        ('{"ID": "x", "Weight": "heavy"}', "Weight must be int"),
        ('{"ID": "x", "CanSeal": 1}', "CanSeal must be bool"),
        ('{"ID": "x", "Groups": [1]}', "Groups must be a list of strings"),
        ('{"ID": "x", "AllowTypes": ["nope"]}', "unknown file type"),
        ('{"ID": "x", "DenyMiners": ["bob"]}', "not a miner id address"),
    ]:
        (tmp_path / SECTORSTORE_FILE).write_text(content)
        with pytest.raises(StorageError, match=message):
            open_path(tmp_path)
    with pytest.raises(StorageError, match="not a directory"):
        open_path(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorageError, match="not a storage path"):
        open_path(tmp_path / "empty")


def test_type_and_miner_filters() -> None:
    meta = PathMeta("x", allow_types=("cache", "sealed"), deny_types=("sealed",),
                    allow_miners=("f01000", "t01001"), deny_miners=("t01001",))
    assert meta.allows(FileType.CACHE)
    assert not meta.allows(FileType.SEALED)
    assert not meta.allows(FileType.CACHE | FileType.UNSEALED)
    assert meta.allows_miner(1000)
    assert not meta.allows_miner(1001)
    assert not meta.allows_miner(1002)
    assert PathMeta("y").allows(FileType.PIECE)


def test_fsstat_json_round_trip() -> None:
    stat = FsStat(100, 40, 50, 10, 0, 0)
    assert FsStat.from_json(stat.to_json()) == stat
    with pytest.raises(StorageError):
        FsStat.from_json({"capacity": -1, "available": 0, "fs_available": 0, "reserved": 0})
    with pytest.raises(StorageError):
        FsStat.from_json("nope")


def test_stat_reservations_and_max_storage(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    base = path.stat()
    assert base.reserved == 0 and base.available == base.fs_available > 0
    with path.reserve(1000) as reservation:
        assert reservation.nbytes == 1000
        assert path.stat().reserved == 1000
        with pytest.raises(NoSpaceError, match="cannot reserve"):
            path.reserve(base.fs_available * 2)
    assert path.stat().reserved == 0
    reservation.release()  # idempotent

    limited = LocalPath(path.root, PathMeta("p", can_seal=True, max_storage=1 << 20))
    target = limited.sector_path(FileType.SEALED, SECTOR)
    target.write_bytes(b"x" * 200_000)
    stat = limited.stat()
    assert stat.capacity == 1 << 20 and stat.max == 1 << 20
    assert stat.used >= 200_000
    assert stat.available == (1 << 20) - stat.used
    with pytest.raises(NoSpaceError):
        limited.reserve(1 << 20)


def test_reservation_shrinks_as_its_file_grows(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    target = path.sector_path(FileType.UNSEALED, SECTOR)
    with path.reserve(1 << 20, target) as reservation:
        assert reservation.outstanding() == 1 << 20
        target.write_bytes(b"\1" * (256 * 1024))
        assert reservation.outstanding() == (1 << 20) - 256 * 1024
        assert path.stat().reserved == reservation.outstanding()


def test_reserve_sector_uses_layout_sizes_and_type_filters(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False, deny_types=["update"])
    with path.reserve_sector(SECTOR, FileType.SEALED | FileType.CACHE, P2K) as reservation:
        assert reservation.nbytes == space_needed(FileType.SEALED | FileType.CACHE, P2K)
    with pytest.raises(StorageError, match="does not accept update"):
        path.reserve_sector(SECTOR, FileType.UPDATE, P2K)


def test_concurrent_reservations_never_overcommit(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    each = path.stat().available // 3
    granted: list[object] = []
    refused: list[Exception] = []

    def grab() -> None:
        try:
            granted.append(path.reserve(each))
        except NoSpaceError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) <= 3 and len(granted) + len(refused) == 6


def test_health_check_fails_when_the_disk_goes_away(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    (path.root / SECTORSTORE_FILE).unlink()
    with pytest.raises(StorageError, match=r"missing its sectorstore\.json"):
        path.stat()


def test_sector_files_are_found_and_removed(tmp_path: Path) -> None:
    path = init_path(tmp_path / "p", can_seal=True, can_store=False)
    path.sector_path(FileType.SEALED, SECTOR).write_bytes(b"s")
    cache = path.sector_path(FileType.CACHE, SECTOR)
    cache.mkdir()
    (cache / "p_aux").write_bytes(b"a")
    path.sector_path(FileType.UNSEALED, SectorID(1000, 8)).write_bytes(b"u")
    (path.root / "sealed" / "fetching").mkdir()
    (path.root / "sealed" / "README").write_text("not a sector")
    assert path.sectors() == {SECTOR: FileType.SEALED | FileType.CACHE,
                              SectorID(1000, 8): FileType.UNSEALED}
    assert path.has(FileType.CACHE, SECTOR)
    assert path.remove(FileType.CACHE, SECTOR)
    assert not path.remove(FileType.CACHE, SECTOR)
    assert path.sectors()[SECTOR] == FileType.SEALED


def test_repo_storage_json(tmp_path: Path) -> None:
    repo = RepoStorage(tmp_path / "repo")
    assert repo.attached() == []
    a = init_path(tmp_path / "a", can_seal=True, can_store=False)
    b = init_path(tmp_path / "b", can_seal=False, can_store=True)
    repo.attach(a.root)
    repo.attach(b.root)
    repo.attach(a.root)
    assert json.loads(repo.file.read_text()) == {
        "StoragePaths": [{"Path": str(a.root)}, {"Path": str(b.root)}]}
    assert [p.id for p in repo.open_all()] == [a.id, b.id]
    clone = tmp_path / "clone"
    init_path(clone, can_seal=True, can_store=False, path_id=a.id)
    with pytest.raises(StorageError, match="already attached"):
        repo.attach(clone)
    with pytest.raises(StorageError, match="not a storage path"):
        repo.attach(tmp_path)
    repo.detach(a.root)
    assert repo.attached() == [b.root]
    with pytest.raises(StorageError, match="not attached"):
        repo.detach(a.root)
    assert not list(repo.file.parent.glob("*.tmp"))
    repo.file.write_text('{"StoragePaths": [{"Where": 1}]}')
    with pytest.raises(StorageError, match="StoragePaths"):
        repo.attached()


def test_opening_a_plain_directory_hints_at_init(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="attach it with --init and --seal and/or --store"):
        open_path(tmp_path)
