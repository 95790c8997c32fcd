"""The storage index: which storage path, on which hosts, holds which sector files.

Pure bookkeeping (no I/O, no Trio): the manager feeds it what agents report (attached
paths, heartbeats with FsStat, declared and dropped sector files) and asks it where a
sector's files are (:meth:`StorageIndex.find`) and where new files should go
(:meth:`StorageIndex.best_alloc`).  Time comes from an injected clock.

Rules (Lotus' ``storage/paths/index.go``):

* a path is *healthy* while its last heartbeat is younger than ``heartbeat_timeout``
  (50 s) and reported no error; unhealthy paths are never allocation or fetch targets;
* ``find`` weighs a holding path as ``Weight × number of requested types it holds``; with
  ``allow_fetch`` it also lists every healthy sealing path with room for the files
  (weight 0) that the sector may move to: when every holding path names ``AllowTo``
  groups, only paths in one of those ``Groups`` qualify;
* ``best_alloc`` keeps healthy paths of the right kind (CanSeal for sealing, CanStore for
  long-term storage), ``Weight > 0``, accepting the file types and the miner, with room
  for the files, ordered by ``available × Weight``, best first;
* *available* is the path's reported free space minus the index's own reservations,
  which the manager makes when it sends files to a path and which end when those files
  are declared (or released).

:meth:`StorageIndex.snapshot` gives a JSON-able picture (paths and declarations) for
persistence; reservations and heartbeats are not part of it, so restored paths count as
silent until they report again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sealagent.errors import ConfigError, StorageError
from sealagent.storage.layout import space_needed
from sealagent.storage.meta import FsStat, PathMeta
from sealagent.vocab.groups import allowed_groups
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID

DEFAULT_HEARTBEAT_TIMEOUT: Final = 50.0
"""Seconds without a heartbeat after which a path is considered gone (Lotus: 50 s)."""

SNAPSHOT_VERSION: Final = 1


@dataclass
class PathRecord:
    """What the index knows about one storage path."""

    meta: PathMeta
    urls: list[str]
    stat: FsStat | None = None
    last_heartbeat: float | None = None
    error: str | None = None
    reservations: dict[tuple[SectorID, FileType], int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The path ID."""
        return self.meta.id

    @property
    def reserved(self) -> int:
        """Bytes the index has set aside in this path."""
        return sum(self.reservations.values())

    @property
    def available(self) -> int:
        """Reported free space minus the index's reservations (0 before any report)."""
        return 0 if self.stat is None else max(0, self.stat.available - self.reserved)


@dataclass(frozen=True)
class SectorLocation:
    """A path that holds (or may receive, weight 0) files of a sector."""

    path_id: str
    urls: tuple[str, ...]
    weight: int
    can_seal: bool
    can_store: bool
    primary: bool
    file_types: FileType
    healthy: bool


class StorageIndex:
    """Paths, their health and the sector files they hold."""

    def __init__(self, *, heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.heartbeat_timeout = heartbeat_timeout
        self.clock = clock
        self._paths: dict[str, PathRecord] = {}
        self._sectors: dict[tuple[SectorID, FileType], dict[str, bool]] = {}

    # ------------------------------------------------------------------ paths

    def attach(self, meta: PathMeta, url: str, stat: FsStat | None = None, *,
               serving: Callable[[], Collection[str]] | None = None) -> PathRecord:
        """Add a path (or another URL of a shared path); a stat counts as a heartbeat.

        :param serving: gives the URLs that serve files now; when given, the path's other
            URLs (those of agents that died, or came back at another address) are dropped.
            It is called only when the path has a URL besides ``url``.
        """
        record = self._paths.get(meta.id)
        if record is None:
            record = self._paths[meta.id] = PathRecord(meta, [])
        else:
            record.meta = meta
        if serving is not None and any(u != url for u in record.urls):
            live = serving()
            record.urls[:] = [u for u in record.urls if u == url or u in live]
        if url not in record.urls:
            record.urls.append(url)
        if stat is not None:
            self.report_health(meta.id, stat)
        return record

    def detach(self, path_id: str, url: str | None = None) -> None:
        """Remove one URL of a path, or the whole path (and its declarations) when no URL
        is left or ``url`` is None."""
        record = self.path(path_id)
        if url is not None:
            if url not in record.urls:
                raise StorageError(f"storage path {path_id} is not reachable at {url}")
            record.urls.remove(url)
            if record.urls:
                return
        del self._paths[path_id]
        for key in list(self._sectors):
            self._sectors[key].pop(path_id, None)
            if not self._sectors[key]:
                del self._sectors[key]

    def report_health(self, path_id: str, stat: FsStat | None, error: str | None = None) -> None:
        """Record a heartbeat: the path's space, or the error its stat raised."""
        record = self.path(path_id)
        record.last_heartbeat = self.clock()
        record.error = error
        if stat is not None:
            record.stat = stat

    def is_healthy(self, path_id: str) -> bool:
        """Heard from within the heartbeat timeout, with a stat and without an error."""
        record = self.path(path_id)
        return (record.last_heartbeat is not None and record.error is None
                and record.stat is not None
                and self.clock() - record.last_heartbeat <= self.heartbeat_timeout)

    def path(self, path_id: str) -> PathRecord:
        """The record of ``path_id``; StorageError if unknown."""
        try:
            return self._paths[path_id]
        except KeyError:
            raise StorageError(f"unknown storage path {path_id}") from None

    def paths(self) -> list[PathRecord]:
        """Every path, by ID."""
        return [self._paths[k] for k in sorted(self._paths)]

    # ---------------------------------------------------------------- sectors

    def declare(self, path_id: str, sector: SectorID, file_types: FileType, *,
                primary: bool = False, exclusive: bool = False) -> None:
        """Record that ``path_id`` holds the ``file_types`` files of ``sector``.

        Ends the index reservations made for those files there.  With ``exclusive`` the
        declared copy replaces every other copy of those files in the index: a task's
        output is the copy of record, and copies left elsewhere are stale.
        """
        record = self.path(path_id)
        for file_type in _single_types(file_types):
            if exclusive:
                self._sectors.pop((sector, file_type), None)
            holders = self._sectors.setdefault((sector, file_type), {})
            holders[path_id] = primary or holders.get(path_id, False)
            record.reservations.pop((sector, file_type), None)

    def drop(self, path_id: str, sector: SectorID, file_types: FileType) -> None:
        """Record that ``path_id`` no longer holds those files."""
        self.path(path_id)
        for file_type in _single_types(file_types):
            holders = self._sectors.get((sector, file_type), {})
            holders.pop(path_id, None)
            if not holders:
                self._sectors.pop((sector, file_type), None)

    def sectors_in(self, path_id: str) -> dict[SectorID, FileType]:
        """Every sector file declared in ``path_id``."""
        self.path(path_id)
        found: dict[SectorID, FileType] = {}
        for (sector, file_type), holders in self._sectors.items():
            if path_id in holders:
                found[sector] = found.get(sector, FileType(0)) | file_type
        return dict(sorted(found.items()))

    def find(self, sector: SectorID, file_types: FileType, *, allow_fetch: bool = False,
             proof: RegisteredSealProof | None = None) -> list[SectorLocation]:
        """Paths holding any of the ``file_types`` files of ``sector``, best first.

        With ``allow_fetch`` (which needs ``proof`` to size the files) the healthy sealing
        paths the files may be fetched into follow, with weight 0.
        """
        held: dict[str, tuple[FileType, bool]] = {}
        for file_type in _single_types(file_types):
            for path_id, primary in self._sectors.get((sector, file_type), {}).items():
                types, was_primary = held.get(path_id, (FileType(0), False))
                held[path_id] = (types | file_type, was_primary or primary)
        found = [
            self._location(path_id, types, primary, len(types.split()))
            for path_id, (types, primary) in held.items()
        ]
        found.sort(key=lambda loc: (not loc.healthy, -loc.weight, loc.path_id))
        if allow_fetch:
            if proof is None:
                raise ConfigError("find(allow_fetch=True) needs the sector's proof")
            found += self._fetch_targets(file_types, proof, held)
        return found

    def _location(self, path_id: str, types: FileType, primary: bool,
                  multiplier: int) -> SectorLocation:
        record = self._paths[path_id]
        return SectorLocation(path_id, tuple(record.urls), record.meta.weight * multiplier,
                              record.meta.can_seal, record.meta.can_store, primary, types,
                              self.is_healthy(path_id))

    def _fetch_targets(self, file_types: FileType, proof: RegisteredSealProof,
                       held: dict[str, tuple[FileType, bool]]) -> list[SectorLocation]:
        groups = self.allowed_groups(held)
        need = space_needed(file_types, proof)
        targets = [
            self._location(record.id, FileType(0), False, 0)
            for record in self.paths()
            if record.id not in held and record.meta.can_seal
            and record.meta.allows(file_types) and self.is_healthy(record.id)
            and record.available >= need
            and (groups is None or groups & set(record.meta.groups))
        ]
        return targets

    def allowed_groups(self, holders: Iterable[str]) -> frozenset[str] | None:
        """The groups files held in ``holders`` may move to (Lotus' ``AllowTo``, see
        :func:`~sealagent.vocab.groups.allowed_groups`)."""
        return allowed_groups(self._paths[p].meta.allow_to for p in holders
                              if p in self._paths)

    # ------------------------------------------------------------- allocation

    def best_alloc(self, file_types: FileType, proof: RegisteredSealProof, *,
                   sealing: bool = True, miner: int | None = None) -> list[PathRecord]:
        """Paths where new ``file_types`` files of a sector may go, best first."""
        need = space_needed(file_types, proof, sealing=sealing)
        candidates = [
            record for record in self.paths()
            if (record.meta.can_seal if sealing else record.meta.can_store)
            and record.meta.weight > 0 and record.meta.allows(file_types)
            and (miner is None or record.meta.allows_miner(miner))
            and self.is_healthy(record.id) and record.available >= need
        ]
        candidates.sort(key=lambda r: (-r.available * r.meta.weight, r.id))
        return candidates

    def reserve(self, path_id: str, sector: SectorID, file_types: FileType,
                proof: RegisteredSealProof, *, sealing: bool = True) -> int:
        """Set aside space for files the manager is sending to ``path_id``; returns bytes.

        The reservation ends when the files are declared there, or on :meth:`release`.
        """
        record = self.path(path_id)
        for file_type in _single_types(file_types):
            record.reservations[(sector, file_type)] = space_needed(
                file_type, proof, sealing=sealing)
        return sum(record.reservations[(sector, t)] for t in file_types.split())

    def release(self, path_id: str, sector: SectorID, file_types: FileType) -> None:
        """End the reservations for those files in ``path_id``."""
        record = self.path(path_id)
        for file_type in _single_types(file_types):
            record.reservations.pop((sector, file_type), None)

    # ------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able picture of the paths and the declared files."""
        return {
            "version": SNAPSHOT_VERSION,
            "paths": [
                {"meta": r.meta.to_json(), "urls": list(r.urls),
                 "stat": None if r.stat is None else r.stat.to_json()}
                for r in self.paths()
            ],
            "sectors": [
                {"miner": sector.miner, "number": sector.number, "file_type": ft.dir_name,
                 "path_id": path_id, "primary": primary}
                for (sector, ft), holders in sorted(self._sectors.items())
                for path_id, primary in sorted(holders.items())
            ],
        }

    @classmethod
    def from_snapshot(cls, data: Any, *, heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
                      clock: Callable[[], float] = time.monotonic) -> StorageIndex:
        """Rebuild an index from :meth:`snapshot` output; StorageError when malformed."""
        index = cls(heartbeat_timeout=heartbeat_timeout, clock=clock)
        if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
            raise StorageError(f"not a version {SNAPSHOT_VERSION} storage index snapshot")
        try:
            for entry in data["paths"]:
                urls = [str(u) for u in entry["urls"]]
                record = PathRecord(PathMeta.from_json(entry["meta"]), urls)
                if entry["stat"] is not None:
                    record.stat = FsStat.from_json(entry["stat"])
                index._paths[record.id] = record
            for entry in data["sectors"]:
                sector = SectorID(entry["miner"], entry["number"])
                file_type = FileType.parse(entry["file_type"])
                index.path(entry["path_id"])
                holders = index._sectors.setdefault((sector, file_type), {})
                holders[entry["path_id"]] = bool(entry["primary"])
        except (KeyError, TypeError, ConfigError) as exc:
            raise StorageError(f"malformed storage index snapshot: {exc!r}") from None
        return index


def _single_types(file_types: FileType) -> tuple[FileType, ...]:
    types = file_types.split()
    if not types:
        raise ConfigError("no file type given")
    return types
