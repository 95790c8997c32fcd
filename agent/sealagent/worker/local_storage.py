"""The storage paths of one agent: where a sector's files are, or will go.

The agent keeps its paths in ``<repo>/storage.json`` (Lotus' format, see
:class:`sealagent.storage.paths.RepoStorage`).  For a task it finds each sector file in
whichever path holds it; a file that is not here yet goes to the best sealing path:
``CanSeal``, accepting the file types, with the most available space × weight (Lotus'
``StorageBestAlloc`` order).  All methods block on the filesystem; call them through
``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from pathlib import Path

from sealagent.errors import NoSpaceError, StorageError
from sealagent.phases import SectorPaths
from sealagent.protocol import SectorFile
from sealagent.storage.layout import space_needed
from sealagent.storage.paths import LocalPath, RepoStorage
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import SECTOR_FILES, FileType, SectorID, sector_path


class LocalStorage:
    """The agent's opened storage paths (thread-safe)."""

    def __init__(self, repo: RepoStorage, paths: Sequence[LocalPath] = ()) -> None:
        self.repo = repo
        self._paths = list(paths)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, repo_dir: str | Path) -> LocalStorage:
        """Open every path listed in ``<repo_dir>/storage.json``."""
        repo = RepoStorage(repo_dir)
        return cls(repo, repo.open_all())

    def paths(self) -> list[LocalPath]:
        """The opened paths, in attach order."""
        with self._lock:
            return list(self._paths)

    def attach(self, directory: str | Path) -> LocalPath:
        """Add an initialised path (``sectorstore.json`` present) to the repo and open it."""
        path = self.repo.attach(directory)
        with self._lock:
            if all(p.id != path.id for p in self._paths):
                self._paths.append(path)
        return path

    def at(self, directory: str | Path) -> LocalPath:
        """The attached path whose directory is ``directory`` (StorageError if none)."""
        root = Path(directory).absolute()
        for path in self.paths():
            if path.root.absolute() == root:
                return path
        raise StorageError(f"{root} is not a storage path of this agent")

    def detach(self, path: LocalPath) -> None:
        """Remove ``path`` from the repo's list, then stop using it (its files stay)."""
        self.repo.detach(path.root)
        self.forget(path.id)

    def forget(self, path_id: str) -> None:
        """Stop using the path ``path_id`` (its files stay; the repo's list is left alone:
        the manager's built-in agent shares the list the manager already changed)."""
        with self._lock:
            self._paths = [p for p in self._paths if p.id != path_id]

    def find(self, file_type: FileType, sector: SectorID) -> LocalPath | None:
        """The path holding the ``file_type`` file of ``sector``, if any."""
        return next((p for p in self.paths() if p.has(file_type, sector)), None)

    def best_for(self, file_types: FileType, proof: RegisteredSealProof, sector: SectorID,
                 *, store: bool = False, groups: Collection[str] | None = None) -> LocalPath:
        """The sealing path new ``file_types`` files of ``sector`` should go to; with
        ``store``, the long-term storage path (``CanStore``) its finalized files go to.

        Only paths in one of ``groups`` qualify when it is given (the holders' AllowTo).

        :raises StorageError: no healthy path of the kind accepts these file types.
        :raises NoSpaceError: none of them has the space.
        """
        needed = space_needed(file_types, proof, sealing=not store) if file_types else 0
        kind = "store" if store else "sealing"
        candidates = []
        for path in self.paths():
            meta = path.meta
            if not (meta.can_store if store else meta.can_seal) or meta.weight == 0 \
                    or not meta.allows(file_types) or not meta.allows_miner(sector.miner) \
                    or (groups is not None and not set(groups) & set(meta.groups)):
                continue
            try:
                stat = path.stat()
            except StorageError:
                continue
            candidates.append((stat.available * meta.weight, stat.available, path))
        if not candidates:
            names = ", ".join(file_types.names) or "sector"
            within = f" in groups {', '.join(sorted(groups))}" if groups is not None else ""
            raise StorageError(f"no {kind} path on this agent{within} accepts {names} files "
                               f"(attach one with {'CanStore' if store else 'CanSeal'})")
        candidates.sort(key=lambda c: -c[0])
        _, available, best = candidates[0]
        if available < needed:
            raise NoSpaceError(f"no {kind} path has {needed} bytes free for "
                               f"{', '.join(file_types.names)} of {sector} "
                               f"(best: {best.root} with {available})")
        return best

    def sector_paths(self, sector: SectorID, root: Path) -> SectorPaths:
        """Where each of the sector's files is, or goes (under ``root`` when absent)."""
        where = {}
        for file_type in SECTOR_FILES.split():
            holder = self.find(file_type, sector)
            where[file_type] = (holder.sector_path(file_type, sector) if holder is not None
                                else sector_path(root, file_type, sector))
        return SectorPaths(unsealed=str(where[FileType.UNSEALED]),
                           sealed=str(where[FileType.SEALED]), cache=str(where[FileType.CACHE]))

    def absent(self, sector: SectorID, file_types: FileType) -> tuple[SectorFile, ...]:
        """The ``file_types`` files of ``sector`` that none of these paths holds, once
        for each path: what a report drops from the manager's index when a task found
        its inputs missing here (so that the holders are looked up again)."""
        missing = [t for t in file_types.split()
                   if not any(p.has(t, sector) for p in self.paths())]
        return tuple(SectorFile(p.id, t) for p in self.paths() for t in missing)

    def declared(self, sector: SectorID) -> tuple[SectorFile, ...]:
        """Every file of ``sector`` held here, as the result report declares them."""
        out = []
        for path in self.paths():
            for file_type in SECTOR_FILES.split():
                if path.has(file_type, sector):
                    out.append(SectorFile(path.id, file_type))
        return tuple(out)
