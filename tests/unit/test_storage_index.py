"""The storage index: declarations, lookups, allocation, health and snapshots."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sealagent.errors import ConfigError, StorageError
from sealagent.storage.index import StorageIndex
from sealagent.storage.layout import space_needed
from sealagent.storage.meta import FsStat, PathMeta
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID

P2K = RegisteredSealProof.StackedDrg2KiBV1_1
S1 = SectorID(1000, 1)
GB = 10**9
CACHE_SEALED = FileType.CACHE | FileType.SEALED


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stat(available: int) -> FsStat:
    return FsStat(10 * GB, available, available, 0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def index(clock: Clock) -> StorageIndex:
    idx = StorageIndex(clock=clock)
    idx.attach(PathMeta("seal-a", weight=10, can_seal=True), "http://a/remote", stat(5 * GB))
    idx.attach(PathMeta("seal-b", weight=10, can_seal=True, groups=("g1",)), "http://b/remote",
               stat(8 * GB))
    idx.attach(PathMeta("store", weight=5, can_store=True, allow_to=("g1",)),
               "http://s/remote", stat(9 * GB))
    return idx


def test_declare_find_and_drop(index: StorageIndex) -> None:
    index.declare("seal-a", S1, CACHE_SEALED)
    index.declare("store", S1, FileType.SEALED, primary=True)
    found = index.find(S1, CACHE_SEALED)
    assert [(loc.path_id, loc.weight, loc.file_types, loc.primary) for loc in found] == [
        ("seal-a", 20, CACHE_SEALED, False),
        ("store", 5, FileType.SEALED, True),
    ]
    assert found[0].urls == ("http://a/remote",)
    assert index.sectors_in("seal-a") == {S1: CACHE_SEALED}
    index.drop("seal-a", S1, FileType.CACHE)
    assert [loc.path_id for loc in index.find(S1, FileType.CACHE)] == []
    assert index.find(SectorID(1000, 99), FileType.SEALED) == []
    with pytest.raises(StorageError, match="unknown storage path"):
        index.declare("nowhere", S1, FileType.SEALED)
    with pytest.raises(ConfigError, match="no file type"):
        index.declare("seal-a", S1, FileType(0))


def test_an_exclusive_declaration_replaces_other_copies(index: StorageIndex) -> None:
    index.declare("seal-a", S1, CACHE_SEALED)
    index.declare("seal-b", S1, FileType.CACHE, exclusive=True)
    assert [loc.path_id for loc in index.find(S1, FileType.CACHE)] == ["seal-b"]
    assert [loc.path_id for loc in index.find(S1, FileType.SEALED)] == ["seal-a"]
    index.declare("seal-a", S1, FileType.CACHE)
    assert sorted(loc.path_id for loc in index.find(S1, FileType.CACHE)) == ["seal-a", "seal-b"]


def test_fetch_targets_respect_allow_to_groups(index: StorageIndex) -> None:
    index.declare("store", S1, FileType.SEALED)
    found = index.find(S1, FileType.SEALED, allow_fetch=True, proof=P2K)
    # store has AllowTo g1: only seal-b (in g1) may receive the sector.
    assert [(loc.path_id, loc.weight) for loc in found] == [("store", 5), ("seal-b", 0)]
    index.declare("seal-a", S1, FileType.SEALED)
    anywhere = index.find(S1, FileType.SEALED, allow_fetch=True, proof=P2K)
    assert [loc.path_id for loc in anywhere] == ["seal-a", "store", "seal-b"]
    with pytest.raises(ConfigError, match="needs the sector's proof"):
        index.find(S1, FileType.SEALED, allow_fetch=True)


def test_allowed_groups_need_every_holder_to_name_some(index: StorageIndex) -> None:
    index.attach(PathMeta("store-2", can_store=True, allow_to=("g2", "g3")),
                 "http://t/remote", stat(GB))
    assert index.allowed_groups(["store"]) == frozenset({"g1"})
    assert index.allowed_groups(["store", "store-2"]) == frozenset({"g1", "g2", "g3"})
    assert index.allowed_groups(["store", "seal-a"]) is None
    assert index.allowed_groups([]) is None


def test_best_alloc_orders_by_available_times_weight(index: StorageIndex) -> None:
    assert [r.id for r in index.best_alloc(CACHE_SEALED, P2K)] == ["seal-b", "seal-a"]
    assert [r.id for r in index.best_alloc(CACHE_SEALED, P2K, sealing=False)] == ["store"]
    index.attach(PathMeta("seal-c", weight=100, can_seal=True), "http://c/remote", stat(GB))
    assert [r.id for r in index.best_alloc(CACHE_SEALED, P2K)] == ["seal-c", "seal-b", "seal-a"]


def test_best_alloc_filters(index: StorageIndex, clock: Clock) -> None:
    index.attach(PathMeta("readonly", weight=0, can_seal=True), "http://r/remote", stat(GB))
    index.attach(PathMeta("no-cache", can_seal=True, deny_types=("cache",)), "http://n/remote",
                 stat(GB))
    index.attach(PathMeta("other-miner", can_seal=True, allow_miners=("f02000",)),
                 "http://o/remote", stat(GB))
    index.attach(PathMeta("tiny", can_seal=True), "http://t/remote", stat(100))
    ids = [r.id for r in index.best_alloc(CACHE_SEALED, P2K, miner=1000)]
    assert ids == ["seal-b", "seal-a"]
    assert "other-miner" in [r.id for r in index.best_alloc(FileType.SEALED, P2K, miner=2000)]
    clock.now += 51
    index.report_health("seal-a", stat(5 * GB))
    assert [r.id for r in index.best_alloc(CACHE_SEALED, P2K)] == ["seal-a"]
    index.report_health("seal-a", None, error="input/output error")
    assert index.best_alloc(CACHE_SEALED, P2K) == []
    assert not index.is_healthy("seal-a")


def test_reservations_reduce_available_until_declared(index: StorageIndex) -> None:
    tight = PathMeta("tight", can_seal=True)
    need = space_needed(CACHE_SEALED, P2K)
    index.attach(tight, "http://t/remote", stat(need + need // 2))
    assert "tight" in [r.id for r in index.best_alloc(CACHE_SEALED, P2K)]
    assert index.reserve("tight", S1, CACHE_SEALED, P2K) == need
    assert index.path("tight").available == need // 2
    assert "tight" not in [r.id for r in index.best_alloc(CACHE_SEALED, P2K)]
    index.declare("tight", S1, FileType.SEALED)
    assert index.path("tight").reserved == space_needed(FileType.CACHE, P2K)
    index.release("tight", S1, FileType.CACHE)
    assert index.path("tight").reserved == 0


def test_shared_paths_accumulate_urls_and_detach(index: StorageIndex) -> None:
    index.attach(PathMeta("store", weight=5, can_store=True), "http://s2/remote")
    assert index.path("store").urls == ["http://s/remote", "http://s2/remote"]
    index.declare("store", S1, FileType.SEALED)
    index.detach("store", "http://s/remote")
    assert index.find(S1, FileType.SEALED)[0].urls == ("http://s2/remote",)
    with pytest.raises(StorageError, match="not reachable"):
        index.detach("store", "http://s/remote")
    index.detach("store")
    assert index.find(S1, FileType.SEALED) == []
    with pytest.raises(StorageError):
        index.path("store")


def test_snapshot_round_trip(index: StorageIndex, clock: Clock) -> None:
    index.declare("seal-a", S1, CACHE_SEALED)
    index.declare("store", SectorID(1000, 2), FileType.SEALED, primary=True)
    snapshot = json.loads(json.dumps(index.snapshot()))
    restored = StorageIndex.from_snapshot(snapshot, clock=clock)
    assert restored.snapshot() == snapshot
    assert restored.find(S1, CACHE_SEALED)[0].file_types == CACHE_SEALED
    assert restored.find(SectorID(1000, 2), FileType.SEALED)[0].primary
    # Heartbeats are not persisted: restored paths wait for a fresh report.
    assert not restored.is_healthy("seal-a")
    restored.report_health("seal-a", stat(GB))
    assert restored.is_healthy("seal-a")


@pytest.mark.parametrize("mutate", [
    lambda s: s.update(version=99),
    lambda s: s["sectors"].append({"miner": 1, "number": 1, "file_type": "cache",
                                   "path_id": "ghost", "primary": False}),
    lambda s: s["sectors"].append({"miner": 1, "number": 1, "file_type": "nope",
                                   "path_id": "seal-a", "primary": False}),
    lambda s: s["paths"].append({"urls": []}),
    lambda s: s["paths"][0].update(stat={"capacity": "x"}),
])
def test_corrupt_snapshots_are_refused(index: StorageIndex,
                                      mutate: Callable[[dict[str, Any]], object]) -> None:
    snapshot = index.snapshot()
    mutate(snapshot)
    with pytest.raises(StorageError):
        StorageIndex.from_snapshot(snapshot)
