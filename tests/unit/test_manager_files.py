"""Where a finalized sector's files go: the manager's decision before queueing a move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sealagent.manager.config import ManagerConfig
from sealagent.manager.context import ManagerContext
from sealagent.manager.db import Database
from sealagent.manager.files import SectorFiles
from sealagent.storage.meta import FsStat, PathMeta
from sealagent.vocab.sectors import FileType, SectorID

GB = 10**9
SEALED_CACHE = FileType.SEALED | FileType.CACHE


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[SectorFiles]:
    db = await Database.open(tmp_path / "manager.db")
    context = ManagerContext(ManagerConfig(), db, clock=lambda: 100.0)
    found = SectorFiles(context, token="t")
    found.index.attach(PathMeta("seal", can_seal=True, allow_to=("cold",)), "http://a/remote",
                       FsStat(10 * GB, 5 * GB, 5 * GB, 0))
    found.index.declare("seal", SectorID(context.miner, 3), SEALED_CACHE)
    yield found
    await db.aclose()


def attach_store(files: SectorFiles, meta: PathMeta) -> None:
    files.index.attach(meta, "http://s/remote", FsStat(10 * GB, 9 * GB, 9 * GB, 0))


async def test_without_a_usable_store_path_the_files_stay(files: SectorFiles) -> None:
    assert files.no_move_needed(3) == "no store path attached: sealed and cache stay in seal"
    attach_store(files, PathMeta("zero", can_store=True, weight=0))
    attach_store(files, PathMeta("no-sealed", can_store=True, deny_types=("sealed",)))
    attach_store(files, PathMeta("other-miner", can_store=True, allow_miners=("f01001",)))
    assert files.no_move_needed(3) is not None
    assert files.no_move_needed(4) == ("no store path attached: sealed and cache stay in "
                                       "no indexed path")


async def test_a_store_path_asks_for_the_move_unless_the_files_are_there(
        files: SectorFiles) -> None:
    attach_store(files, PathMeta("store", can_store=True))
    assert files.no_move_needed(3) is None
    files.index.declare("store", SectorID(1000, 3), FileType.SEALED)
    assert files.no_move_needed(3) is None  # the cache is not there yet
    files.index.declare("store", SectorID(1000, 3), FileType.CACHE)
    assert files.no_move_needed(3) is None  # a move cut off before "seal" deleted its own
    files.index.drop("seal", SectorID(1000, 3), SEALED_CACHE)
    assert files.no_move_needed(3) == "sealed and cache already in long-term storage (store)"


async def test_the_move_goes_where_the_holders_allow_to(files: SectorFiles) -> None:
    assert files.move_groups(3) == ["cold"]
    attach_store(files, PathMeta("store", can_store=True))
    files.index.declare("store", SectorID(1000, 3), FileType.SEALED)
    assert files.move_groups(3) is None  # a holder without AllowTo lets them go anywhere
    assert files.move_groups(9) is None


async def test_a_move_names_every_copy_outside_the_worker_even_one_it_holds(
        files: SectorFiles) -> None:
    """A move interrupted after its fetch left the worker a copy and the holder its own,
    and a move during sealing left a second cache: the move is told of every copy outside
    the worker, so that it deletes them."""
    from sealagent.task_kinds import StorageJob
    attach_store(files, PathMeta("store", can_store=True))
    files.index.declare("store", SectorID(1000, 3), FileType.SEALED)
    files.index.attach(PathMeta("other", can_seal=True), "http://b/remote",
                       FsStat(10 * GB, 9 * GB, 9 * GB, 0))
    files.index.declare("other", SectorID(1000, 3), FileType.CACHE)
    fetch = files.fetch_list(StorageJob.MOVE_STORAGE, 3, frozenset({"store"}))
    assert sorted((f.file_type.dir_name, f.url) for f in fetch) == [
        ("cache", "http://a/remote/cache/s-t01000-3"),
        ("cache", "http://b/remote/cache/s-t01000-3"),
        ("sealed", "http://a/remote/sealed/s-t01000-3")]


async def test_a_report_makes_stale_only_the_copies_of_files_its_phase_writes(
        files: SectorFiles) -> None:
    """PreCommit1 on another agent read a copy of the unsealed file that its holder kept
    (the holder's delete never happened): that copy is as good as the new one and stays
    indexed, so the move to storage finds and deletes it; the old sealed copy is stale."""
    from sealagent.phases import Phase
    from sealagent.protocol import SectorFile
    sector = SectorID(1000, 3)
    files.index.declare("seal", sector, FileType.UNSEALED)
    files.index.attach(PathMeta("b", can_seal=True), "http://b/remote",
                       FsStat(10 * GB, 9 * GB, 9 * GB, 0))
    files.record(3, [SectorFile("b", FileType.UNSEALED), SectorFile("b", FileType.SEALED),
                     SectorFile("b", FileType.CACHE)], [], stale=Phase.PRECOMMIT1.writes)
    assert {loc.path_id for loc in files.index.find(sector, FileType.UNSEALED)} == {
        "seal", "b"}
    assert [loc.path_id for loc in files.index.find(sector, SEALED_CACHE)] == ["b"]
    assert Phase.PRECOMMIT2.writes == Phase.PRECOMMIT1.writes == SEALED_CACHE
    assert Phase.FINALIZE.writes == FileType.CACHE and Phase.COMMIT1.writes == FileType(0)
