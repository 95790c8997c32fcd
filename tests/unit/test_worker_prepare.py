"""The preparing window's placement of files: paths, reservations, missing inputs."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from sealagent.errors import (
    NoSpaceError,
    RPCTransportError,
    SectorFileNotFoundError,
    StorageError,
)
from sealagent.protocol import Assignment, SectorFile
from sealagent.sched.fit import ActiveResources
from sealagent.sched.resources import WorkerResources
from sealagent.storage.fetch import RemoteClient
from sealagent.storage.layout import FETCH_TEMP_DIR
from sealagent.storage.paths import LocalPath, RepoStorage, init_path, move_sector_file
from sealagent.storage.remote import RemoteHandler
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.web.auth import create_token, jwt_verifier
from sealagent.worker.local_storage import LocalStorage
from sealagent.worker.prepare import Announce, Preparer

SECTOR = SectorID(1000, 4)


def task(task_type: str, **params: Any) -> Assignment:
    return Assignment.from_json({"task_id": "t-1", "attempt": 1, "task_type": task_type,
                                 "sector": {"miner": 1000, "number": 4}, "proof": 5,
                                 "params": params})


def storage(repo: Path, *paths: Path) -> LocalStorage:
    local = LocalStorage(RepoStorage(repo))
    for path in paths:
        local.attach(path)
    return local


async def no_manager(assignment: Assignment, declared: Sequence[SectorFile],
                     dropped: Sequence[SectorFile]) -> None:
    """These tests move no file."""
    raise AssertionError("unexpected declaration")


async def preparer(local: LocalStorage, scratch: Path) -> Preparer:
    return Preparer(local, RemoteClient("t"), WorkerResources(cpus=2, mem_physical=1 << 30),
                    counters=ActiveResources(), scratch=scratch, announce=no_manager)


def peer_preparer(local: LocalStorage, holder: LocalPath, tmp_path: Path,
                  announce: Announce) -> Preparer:
    """A preparer that fetches from ``holder``'s ``/remote`` (served in-process)."""
    secret = b"k" * 32
    remote = RemoteClient(create_token(secret, ["admin"]), transport=httpx.ASGITransport(
        app=RemoteHandler(lambda: [holder], jwt_verifier(secret))))
    return Preparer(local, remote, WorkerResources(cpus=2, mem_physical=1 << 30),
                    counters=ActiveResources(), scratch=tmp_path / "scratch",
                    announce=announce)


async def test_commit2_needs_no_storage(tmp_path: Path) -> None:
    prep = await preparer(storage(tmp_path / "repo"), tmp_path / "scratch")
    prepared = await prep.locate(task("seal/v0/commit/2", c1_output="{}"))
    assert prepared.reservation is None
    assert prepared.paths.cache == str(tmp_path / "scratch" / "cache" / SECTOR.name)


async def test_pc1_reads_where_the_file_is_and_reserves_its_outputs(tmp_path: Path) -> None:
    small = init_path(tmp_path / "small", can_seal=True, can_store=False, weight=1)
    big = init_path(tmp_path / "big", can_seal=True, can_store=False, weight=100)
    (small.sector_path(FileType.UNSEALED, SECTOR)).write_bytes(b"\0" * 2048)
    prep = await preparer(storage(tmp_path / "repo", small.root, big.root), tmp_path / "s")
    prepared = await prep.locate(task("seal/v0/precommit/1", ticket="00" * 32, pieces=[]))
    assert prepared.paths.unsealed == str(small.sector_path(FileType.UNSEALED, SECTOR))
    assert prepared.paths.sealed == str(big.root / "sealed" / SECTOR.name)
    assert prepared.paths.cache == str(big.root / "cache" / SECTOR.name)
    assert prepared.reservation is not None and prepared.reservation.path.id == big.id
    assert prepared.reservation.nbytes > 2 * 2048
    prepared.release()
    assert prepared.reservation.released


async def test_a_missing_input_is_a_temporary_error(tmp_path: Path) -> None:
    seal = init_path(tmp_path / "p", can_seal=True, can_store=False)
    prep = await preparer(storage(tmp_path / "repo", seal.root), tmp_path / "s")
    with pytest.raises(SectorFileNotFoundError, match="needs its sealed, cache file"):
        await prep.locate(task("seal/v0/commit/1", ticket="00" * 32, seed="00" * 32,
                               pieces=[], comm_d="d", comm_r="r"))


async def test_no_sealing_path_or_no_space(tmp_path: Path) -> None:
    store_only = init_path(tmp_path / "store", can_seal=False, can_store=True)
    prep = await preparer(storage(tmp_path / "repo", store_only.root), tmp_path / "s")
    with pytest.raises(StorageError, match="no sealing path on this agent accepts unsealed"):
        await prep.locate(task("seal/v0/addpiece", piece_size=2032))
    tiny = init_path(tmp_path / "tiny", can_seal=True, can_store=False, max_storage=1024)
    prep = await preparer(storage(tmp_path / "repo2", tiny.root), tmp_path / "s")
    with pytest.raises(NoSpaceError):
        await prep.locate(task("seal/v0/addpiece", piece_size=2032))


def test_missing_inputs_are_named_for_every_path(tmp_path: Path) -> None:
    first = init_path(tmp_path / "a", can_seal=True, can_store=False)
    second = init_path(tmp_path / "b", can_seal=True, can_store=False)
    local = storage(tmp_path / "repo", first.root, second.root)
    first.sector_path(FileType.SEALED, SECTOR).write_bytes(b"s")
    absent = local.absent(SECTOR, FileType.SEALED | FileType.CACHE)
    assert sorted((d.path_id, d.file_type) for d in absent) == sorted(
        [(first.id, FileType.CACHE), (second.id, FileType.CACHE)])
    (second.sector_path(FileType.CACHE, SECTOR)).mkdir()
    assert local.absent(SECTOR, FileType.SEALED | FileType.CACHE) == ()


async def test_a_move_declares_the_new_copy_before_the_holder_deletes_its_own(
        tmp_path: Path) -> None:
    holder = init_path(tmp_path / "holder", can_seal=True, can_store=False)
    source = holder.sector_path(FileType.SEALED, SECTOR)
    source.write_bytes(b"sealed replica")
    here = init_path(tmp_path / "here", can_seal=True, can_store=False)
    here.sector_path(FileType.CACHE, SECTOR).mkdir()
    calls: list[tuple[list[SectorFile], list[SectorFile], bool]] = []
    refuse = [False]

    async def announce(assignment: Assignment, declared: Sequence[SectorFile],
                       dropped: Sequence[SectorFile]) -> None:
        calls.append((list(declared), list(dropped), source.exists()))
        if refuse[0]:
            raise RPCTransportError("manager unreachable")

    prep = peer_preparer(storage(tmp_path / "repo", here.root), holder, tmp_path, announce)
    assignment = Assignment.from_json({
        "task_id": "t-2", "attempt": 1, "task_type": "seal/v0/precommit/2",
        "sector": {"miner": 1000, "number": 4}, "proof": 5, "params": {},
        "fetch": [{"file_type": "sealed", "url": "http://holder/sealed/s-t01000-4"}]})

    refuse[0] = True
    kept = await prep.prepare(assignment)
    kept.release()
    assert kept.dropped == () and source.exists()
    assert calls == [([SectorFile(here.id, FileType.SEALED)], [], True)]

    here.sector_path(FileType.SEALED, SECTOR).unlink()
    refuse[0], calls[:] = False, []
    moved = await prep.prepare(assignment)
    moved.release()
    assert not source.exists()
    assert moved.dropped == (SectorFile(holder.id, FileType.SEALED),)
    assert calls == [([SectorFile(here.id, FileType.SEALED)], [], True),
                     ([], [SectorFile(holder.id, FileType.SEALED)], False)]


async def test_a_move_to_storage_completes_a_move_an_earlier_attempt_left_half_done(
        tmp_path: Path) -> None:
    """The manager cannot record the new copy: the move fails (temporarily) and the holder
    keeps its copy; the retry finds the copy already in the store path and deletes the
    holder's."""
    holder = init_path(tmp_path / "holder", can_seal=True, can_store=False)
    finalized_files(holder)
    store = init_path(tmp_path / "store", can_seal=False, can_store=True)
    refuse = [True]

    async def announce(assignment: Assignment, declared: Sequence[SectorFile],
                       dropped: Sequence[SectorFile]) -> None:
        if refuse[0]:
            raise RPCTransportError("manager unreachable")

    local = storage(tmp_path / "repo", store.root)
    prep = peer_preparer(local, holder, tmp_path, announce)
    assignment = task("seal/v0/fetch", allow_to=None)
    assignment = Assignment.from_json({
        **assignment.to_json(),
        "fetch": [{"file_type": "sealed", "url": "http://holder/sealed/s-t01000-4"},
                  {"file_type": "cache", "url": "http://holder/cache/s-t01000-4"}]})
    with pytest.raises(RPCTransportError):
        await prep.prepare(assignment)
    assert holder.sectors() == {SECTOR: FileType.SEALED | FileType.CACHE}
    assert store.sectors() == {SECTOR: FileType.SEALED}

    refuse[0] = False
    prepared = await prep.prepare(assignment)
    prepared.release()
    assert holder.sectors() == {}
    assert store.sectors() == {SECTOR: FileType.SEALED | FileType.CACHE}
    assert sorted((d.path_id, d.file_type) for d in prepared.dropped) == [
        (holder.id, FileType.SEALED), (holder.id, FileType.CACHE)]
    assert prepared.moved is not None and prepared.moved.path_id == store.id


def finalized_files(path: LocalPath, unsealed: bool = False) -> None:
    """A finalized sector's sealed file and trimmed cache (and its unsealed copy)."""
    path.sector_path(FileType.SEALED, SECTOR).write_bytes(b"\1" * 2048)
    cache = path.sector_path(FileType.CACHE, SECTOR)
    cache.mkdir()
    (cache / "p_aux").write_bytes(b"\2" * 64)
    if unsealed:
        path.sector_path(FileType.UNSEALED, SECTOR).write_bytes(b"\3" * 2048)


async def test_a_move_to_storage_renames_local_files_into_the_heaviest_store_path(
        tmp_path: Path) -> None:
    seal = init_path(tmp_path / "seal", can_seal=True, can_store=False)
    light = init_path(tmp_path / "light", can_seal=False, can_store=True, weight=1)
    heavy = init_path(tmp_path / "heavy", can_seal=False, can_store=True, weight=100)
    denies = init_path(tmp_path / "denies", can_seal=False, can_store=True, weight=1000,
                       deny_types=["cache"])
    finalized_files(seal, unsealed=True)
    local = storage(tmp_path / "repo", seal.root, light.root, heavy.root, denies.root)
    prep = await preparer(local, tmp_path / "s")
    prepared = await prep.prepare(task("seal/v0/fetch", allow_to=None))
    prepared.release()
    moved = prepared.moved
    assert moved is not None and (moved.path_id, moved.root) == (heavy.id, str(heavy.root))
    assert moved.file_types == (FileType.UNSEALED, FileType.SEALED, FileType.CACHE)
    assert moved.size >= 2 * 2048 + 64
    everything = FileType.SEALED | FileType.CACHE | FileType.UNSEALED
    assert heavy.sectors() == {SECTOR: everything} and seal.sectors() == {}
    assert (heavy.sector_path(FileType.CACHE, SECTOR) / "p_aux").read_bytes() == b"\2" * 64
    assert sorted((d.path_id, d.file_type) for d in prepared.dropped) == sorted(
        (seal.id, t) for t in moved.file_types)
    assert prepared.paths.sealed == str(heavy.sector_path(FileType.SEALED, SECTOR))
    assert "moved to long-term storage path" in moved.describe()


async def test_a_move_to_storage_honours_allow_to_groups(tmp_path: Path) -> None:
    seal = init_path(tmp_path / "seal", can_seal=True, can_store=False)
    outside = init_path(tmp_path / "outside", can_seal=False, can_store=True, weight=100)
    inside = init_path(tmp_path / "inside", can_seal=False, can_store=True, weight=1,
                       groups=["cold"])
    finalized_files(seal)
    prep = await preparer(storage(tmp_path / "repo", seal.root, outside.root, inside.root),
                          tmp_path / "s")
    prepared = await prep.prepare(task("seal/v0/fetch", allow_to=["cold"]))
    prepared.release()
    assert prepared.moved is not None and prepared.moved.path_id == inside.id
    assert inside.sectors() == {SECTOR: FileType.SEALED | FileType.CACHE}
    with pytest.raises(StorageError, match="no store path on this agent in groups hot"):
        await prep.prepare(task("seal/v0/fetch", allow_to=["hot"]))


async def test_a_move_without_a_store_path_or_room_fails_and_keeps_the_files(
        tmp_path: Path) -> None:
    seal = init_path(tmp_path / "seal", can_seal=True, can_store=False)
    finalized_files(seal)
    prep = await preparer(storage(tmp_path / "repo", seal.root), tmp_path / "s")
    with pytest.raises(StorageError, match="no store path on this agent accepts"):
        await prep.prepare(task("seal/v0/fetch", allow_to=None))
    tiny = init_path(tmp_path / "tiny", can_seal=False, can_store=True, max_storage=1024)
    prep = await preparer(storage(tmp_path / "repo2", seal.root, tiny.root), tmp_path / "s")
    with pytest.raises(NoSpaceError):
        await prep.prepare(task("seal/v0/fetch", allow_to=None))
    assert seal.sectors() == {SECTOR: FileType.SEALED | FileType.CACHE}


def test_move_sector_file_copies_across_filesystems_then_deletes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seal = init_path(tmp_path / "seal", can_seal=True, can_store=False)
    store = init_path(tmp_path / "store", can_seal=False, can_store=True)
    finalized_files(seal)
    real_rename = os.rename

    def cross_device(src: Any, dst: Any) -> None:
        if Path(src).parent.name != FETCH_TEMP_DIR:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", cross_device)
    assert move_sector_file(seal, store, FileType.CACHE, SECTOR) > 0
    assert move_sector_file(seal, store, FileType.SEALED, SECTOR) > 0
    assert store.sectors() == {SECTOR: FileType.SEALED | FileType.CACHE}
    assert seal.sectors() == {}
    assert store.sector_path(FileType.SEALED, SECTOR).read_bytes() == b"\1" * 2048
    # a repeated move (the source already gone) finds the file in place
    assert move_sector_file(seal, store, FileType.SEALED, SECTOR) > 0
    with pytest.raises(StorageError, match="is not in"):
        move_sector_file(seal, store, FileType.UNSEALED, SECTOR)


async def test_an_unsealed_copy_the_store_path_refuses_stays(tmp_path: Path) -> None:
    seal = init_path(tmp_path / "seal", can_seal=True, can_store=False)
    store = init_path(tmp_path / "store", can_seal=False, can_store=True,
                      deny_types=["unsealed"])
    finalized_files(seal, unsealed=True)
    prep = await preparer(storage(tmp_path / "repo", seal.root, store.root), tmp_path / "s")
    prepared = await prep.prepare(task("seal/v0/fetch", allow_to=None))
    prepared.release()
    assert prepared.moved is not None
    assert prepared.moved.file_types == (FileType.SEALED, FileType.CACHE)
    assert store.sectors() == {SECTOR: FileType.SEALED | FileType.CACHE}
    assert seal.sectors() == {SECTOR: FileType.UNSEALED}


async def test_an_unseal_fetches_copies_and_the_holder_keeps_its_own(tmp_path: Path) -> None:
    holder = init_path(tmp_path / "store", can_seal=False, can_store=True)
    finalized_files(holder)
    here = init_path(tmp_path / "here", can_seal=True, can_store=False)
    prep = peer_preparer(storage(tmp_path / "repo", here.root), holder, tmp_path, no_manager)
    assignment = Assignment.from_json({
        "task_id": "t-3", "attempt": 1, "task_type": "seal/v0/unseal",
        "sector": {"miner": 1000, "number": 4}, "proof": 5, "params": {},
        "fetch": [{"file_type": "sealed", "url": "http://holder/sealed/s-t01000-4"},
                  {"file_type": "cache", "url": "http://holder/cache/s-t01000-4"}]})
    assert not assignment.moves_inputs
    prepared = await prep.prepare(assignment)
    prepared.release()
    assert [f.file_type for f in prepared.fetched] == [FileType.SEALED, FileType.CACHE]
    assert prepared.dropped == ()
    assert holder.sectors() == here.sectors() == {SECTOR: FileType.SEALED | FileType.CACHE}
