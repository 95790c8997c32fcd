"""Local storage paths: directories with a ``sectorstore.json``, their space and files.

A host's repo lists the paths it uses in ``<repo>/storage.json``
(``{"StoragePaths": [{"Path": "/abs/path"}]}``, Lotus' format), rewritten atomically.

Space: :meth:`LocalPath.stat` reads the filesystem (``shutil.disk_usage``), subtracts the
outstanding reservations (a reservation for a file shrinks as the file grows, so space is
not counted twice), and applies ``MaxStorage``: with a limit set, capacity is the limit
and available is at most ``MaxStorage − used − reserved``, where ``used`` is what the
path's sector files occupy on disk.  :meth:`LocalPath.reserve` fails with
:class:`~sealagent.errors.NoSpaceError` when the space is not there.

All methods here block on the filesystem; Trio code calls them through
``trio.to_thread.run_sync``.  Reservations are guarded by a lock, so concurrent threads
never over-commit a path.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from sealagent.durable import fsync_directory
from sealagent.errors import ConfigError, LinkRefusedError, NoSpaceError, StorageError
from sealagent.storage.layout import FETCH_TEMP_DIR, fetch_temp_path, space_needed
from sealagent.storage.meta import FsStat, PathMeta
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import ALL_FILE_TYPES, FileType, SectorID, sector_path

SECTORSTORE_FILE: Final = "sectorstore.json"
STORAGE_CONFIG_FILE: Final = "storage.json"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename (readers see the
    old or the new file, never a torn one), then fsync the directory so the new file
    survives a crash."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc}") from None


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` (:func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StorageError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None


def disk_usage(path: Path) -> int:
    """Bytes ``path`` (a file or a directory tree) occupies on disk; 0 if absent."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return st.st_blocks * 512
    total = 0
    for parent, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


class Reservation:
    """Space set aside in a path for files about to be written; release it when done.

    Each part is ``(target, nbytes)``: while ``target`` grows, the part's outstanding
    amount shrinks by the bytes already on disk.
    """

    def __init__(self, path: LocalPath, parts: Sequence[tuple[Path | None, int]]) -> None:
        self.path = path
        self.parts = tuple(parts)
        self.released = False

    @property
    def nbytes(self) -> int:
        """Bytes reserved in total."""
        return sum(n for _, n in self.parts)

    def outstanding(self) -> int:
        """Bytes still counted against the path (reserved minus already written)."""
        if self.released:
            return 0
        return sum(max(0, n - (disk_usage(t) if t is not None else 0)) for t, n in self.parts)

    def release(self) -> None:
        """Give the space back (idempotent)."""
        self.path._release(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class LocalPath:
    """An opened storage path on this host."""

    def __init__(self, root: Path, meta: PathMeta) -> None:
        self.root = root
        self.meta = meta
        self._lock = threading.RLock()
        self._reservations: list[Reservation] = []

    @property
    def id(self) -> str:
        """The path's ID (from ``sectorstore.json``)."""
        return self.meta.id

    def __repr__(self) -> str:
        return f"LocalPath({str(self.root)!r}, id={self.id!r})"

    def sector_path(self, file_type: FileType, sector: SectorID) -> Path:
        """Where the ``file_type`` file of ``sector`` lives in this path."""
        return sector_path(self.root, file_type, sector)

    def locate(self, file_type: FileType, sector: SectorID) -> Path | None:
        """The ``file_type`` file of ``sector`` in this path, or None when absent.

        Nothing outside the storage path is ever reached through it: a symbolic link in
        place of the type directory or of the sector file raises LinkRefusedError.
        """
        target = self.sector_path(file_type, sector)
        for step in (target.parent, target):
            try:
                mode = step.lstat().st_mode
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise StorageError(f"cannot read {step}: {exc}") from None
            if stat.S_ISLNK(mode):
                raise LinkRefusedError(f"{step} is a symbolic link; sector files are never "
                                       "reached through links")
        return target

    def has(self, file_type: FileType, sector: SectorID) -> bool:
        """Whether this path holds the ``file_type`` file of ``sector`` (not through a link)."""
        try:
            return self.locate(file_type, sector) is not None
        except LinkRefusedError:
            return False

    def sectors(self) -> dict[SectorID, FileType]:
        """Every sector file in this path, by sector (names that are not sectors skipped)."""
        found: dict[SectorID, FileType] = {}
        for file_type in ALL_FILE_TYPES:
            directory = self.root / file_type.dir_name
            if not directory.is_dir():
                continue
            if directory.is_symlink():
                continue
            for entry in directory.iterdir():
                if (entry.name == FETCH_TEMP_DIR or entry.is_symlink()
                        or entry.is_dir() != file_type.is_dir):
                    continue
                try:
                    sector = SectorID.parse(entry.name)
                except ConfigError:
                    continue
                found[sector] = found.get(sector, FileType(0)) | file_type
        return found

    def remove(self, file_type: FileType, sector: SectorID) -> bool:
        """Delete the ``file_type`` file (or directory) of ``sector``; False if absent.

        LinkRefusedError when a link stands in its place (nothing outside is touched).
        """
        target = self.locate(file_type, sector)
        if target is None:
            return False
        try:
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot remove {target}: {exc}") from None
        return True

    def stat(self) -> FsStat:
        """Capacity and free space; StorageError when the path is unhealthy.

        A path is unhealthy when its directory or its ``sectorstore.json`` is gone (an
        unmounted disk leaves an empty mount point behind).
        """
        if not (self.root / SECTORSTORE_FILE).is_file():
            raise StorageError(f"storage path {self.root} is missing its {SECTORSTORE_FILE}")
        try:
            usage = shutil.disk_usage(self.root)
        except OSError as exc:
            raise StorageError(f"cannot stat storage path {self.root}: {exc}") from None
        with self._lock:
            reserved = sum(r.outstanding() for r in self._reservations)
        capacity, available, used = usage.total, max(0, usage.free - reserved), 0
        limit = self.meta.max_storage
        if limit:
            used = sum(disk_usage(self.root / t.dir_name) for t in ALL_FILE_TYPES)
            capacity = limit
            available = max(0, min(available, limit - used - reserved))
        return FsStat(capacity, available, usage.free, reserved, limit, used)

    def reserve(self, nbytes: int, target: Path | None = None) -> Reservation:
        """Reserve ``nbytes`` for ``target`` (if given); NoSpaceError if they are not free."""
        return self._reserve([(target, nbytes)])

    def reserve_sector(self, sector: SectorID, file_types: FileType,
                       proof: RegisteredSealProof | str | int, *,
                       sealing: bool = True) -> Reservation:
        """Reserve the space the ``file_types`` files of ``sector`` need (see layout)."""
        if not self.meta.allows(file_types):
            raise StorageError(
                f"storage path {self.id} does not accept {', '.join(file_types.names)} files"
            )
        return self._reserve([
            (self.sector_path(t, sector), space_needed(t, proof, sealing=sealing))
            for t in file_types.split()
        ])

    def _reserve(self, parts: Iterable[tuple[Path | None, int]]) -> Reservation:
        reservation = Reservation(self, list(parts))
        if any(n < 0 for _, n in reservation.parts):
            raise StorageError("cannot reserve a negative number of bytes")
        with self._lock:
            available = self.stat().available
            if reservation.outstanding() > available:
                raise NoSpaceError(
                    f"cannot reserve {reservation.nbytes} bytes in {self.root}: "
                    f"{available} available"
                )
            self._reservations.append(reservation)
        return reservation

    def _release(self, reservation: Reservation) -> None:
        with self._lock:
            if not reservation.released:
                reservation.released = True
                self._reservations.remove(reservation)


def move_sector_file(source: LocalPath, dest: LocalPath, file_type: FileType,
                     sector: SectorID) -> int:
    """Move the ``file_type`` file (or cache directory) of ``sector`` from ``source`` to
    ``dest``; returns the bytes it occupies.

    On one filesystem the file is renamed.  Across filesystems it is copied beside its
    destination (in the ``fetching`` directory, which no listing reads), renamed into place,
    and only then deleted at ``source``; a crash leaves a copy too many, never none.  A file
    already at ``dest`` (an earlier attempt that stopped before deleting) is kept and the
    source copy deleted.
    """
    origin = source.locate(file_type, sector)
    target = dest.sector_path(file_type, sector)
    if origin is None:
        if dest.has(file_type, sector):
            return disk_usage(target)
        raise StorageError(f"{file_type.dir_name} of {sector} is not in {source.root}")
    size = disk_usage(origin)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.rename(origin, target)
                fsync_directory(target.parent)
                return size
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
            temp = fetch_temp_path(target)
            temp.parent.mkdir(exist_ok=True)
            if temp.is_dir():
                shutil.rmtree(temp)
            if origin.is_dir():
                shutil.copytree(origin, temp)
            else:
                shutil.copy2(origin, temp)
            os.rename(temp, target)
            fsync_directory(target.parent)
    except OSError as exc:
        raise StorageError(f"cannot move {origin} to {target}: {exc}") from None
    source.remove(file_type, sector)
    return size


def init_path(directory: str | Path, *, can_seal: bool, can_store: bool, weight: int = 10,
              max_storage: int = 0, groups: Sequence[str] = (), allow_to: Sequence[str] = (),
              allow_types: Sequence[str] = (), deny_types: Sequence[str] = (),
              path_id: str | None = None) -> LocalPath:
    """Make ``directory`` a storage path: write its ``sectorstore.json`` and type dirs."""
    root = Path(directory).absolute()
    meta = PathMeta(path_id or str(uuid.uuid4()), weight, can_seal, can_store, max_storage,
                    tuple(groups), tuple(allow_to), tuple(allow_types), tuple(deny_types))
    if (root / SECTORSTORE_FILE).exists():
        raise StorageError(f"{root} is already a storage path ({SECTORSTORE_FILE} exists)")
    try:
        for file_type in ALL_FILE_TYPES:
            (root / file_type.dir_name).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create storage path {root}: {exc}") from None
    write_json_atomic(root / SECTORSTORE_FILE, meta.to_json())
    return LocalPath(root, meta)


def open_path(directory: str | Path) -> LocalPath:
    """Open an initialised storage path; StorageError if its metadata is missing or bad."""
    root = Path(directory).absolute()
    if not root.is_dir():
        raise StorageError(f"storage path {root} is not a directory")
    meta_file = root / SECTORSTORE_FILE
    if not meta_file.exists():
        raise StorageError(f"{root} is not a storage path (no {SECTORSTORE_FILE}); attach it "
                           "with --init and --seal and/or --store to make it one")
    return LocalPath(root, PathMeta.from_json(_read_json(meta_file), str(meta_file)))


class RepoStorage:
    """The list of storage paths a repo uses (``<repo>/storage.json``)."""

    def __init__(self, repo: str | Path) -> None:
        self.file = Path(repo) / STORAGE_CONFIG_FILE

    def attached(self) -> list[Path]:
        """The attached directories, in attach order (none if the file does not exist)."""
        if not self.file.exists():
            return []
        data = _read_json(self.file)
        entries = data.get("StoragePaths") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("Path"), str) for e in entries
        ):
            raise StorageError(f"{self.file}: expected {{\"StoragePaths\": [{{\"Path\": ...}}]}}")
        return [Path(e["Path"]) for e in entries]

    def _write(self, paths: Sequence[Path]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.file, {"StoragePaths": [{"Path": str(p)} for p in paths]})

    def attach(self, directory: str | Path) -> LocalPath:
        """Add an initialised path to the repo (idempotent for the same directory)."""
        path = open_path(directory)
        current = self.attached()
        if path.root in current:
            return path
        for other in current:
            if other.exists() and open_path(other).id == path.id:
                raise StorageError(f"a path with ID {path.id} is already attached: {other}")
        self._write([*current, path.root])
        return path

    def detach(self, directory: str | Path) -> None:
        """Remove a directory from the repo's list; StorageError if it was not attached."""
        root = Path(directory).absolute()
        current = self.attached()
        if root not in current:
            raise StorageError(f"{root} is not attached to {self.file.parent}")
        self._write([p for p in current if p != root])

    def open_all(self) -> list[LocalPath]:
        """Open every attached path."""
        return [open_path(p) for p in self.attached()]
