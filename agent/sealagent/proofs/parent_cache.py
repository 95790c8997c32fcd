"""The parent cache file: every node's 14 parents, as rust-fil-proofs stores them.

The rules are docs/porep.md §5.4.

Layout: for ``v = 0 … nodes−1`` the 14 parents as ``u32`` little-endian, 56 bytes per
node.  Name: ``v28-sdr-parent-<hex(SHA256(…))>.cache`` in ``FIL_PROOFS_PARENT_CACHE``
(default ``$FIL_PROOFS_CACHE_DIR`` + ``filecoin-parents``, ``/var/tmp/filecoin-parents``
without it), so that files built here and by Lotus are interchangeable.

A missing file is built once across processes (an ``fcntl`` lock next to it; the data
goes to a temporary file, is fsynced and renamed into place).  A file is checked once
per process: its size always, and its SHA-256 against rust-fil-proofs' manifest
(``parent_cache.json``) when the manifest lists it.  Graphs the manifest does not know
(synthetic and non-interactive proof ids) are built and trusted.

The parents themselves come from a :class:`ParentsBuilder` (default
:func:`reference_parents`, numpy); a backend may pass a faster one that computes the same
parents (the ``multicore`` backend's is compiled).  Format, name, location, locking and
the digest check stay this module's whatever the builder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeAlias

import numpy as np

from sealagent.durable import fsync_directory
from sealagent.errors import CorruptDataError, InvalidInputError, StorageError
from sealagent.proofs.graph import DEGREE, HASHER_NAME, ParentsArray, StackedGraph
from sealagent.proofs.parents_builder import ParentsBuilder as ParentsBuilder
from sealagent.vocab.registry import GIB, KIB, MIB, RegisteredSealProof, resolve_proof

CACHE_VERSION: Final = 28
"""rust-fil-proofs' parameter/cache version (``VERSION``)."""
NODE_ENTRY_BYTES: Final = 4 * DEGREE
"""Bytes per node in the cache file: 14 × u32."""
PARENT_CACHE_ENV: Final = "FIL_PROOFS_PARENT_CACHE"
CACHE_DIR_ENV: Final = "FIL_PROOFS_CACHE_DIR"
DEFAULT_CACHE_BASE: Final = "/var/tmp/"
CACHE_DIR_NAME: Final = "filecoin-parents"

BUILD_CHUNK_NODES: Final = 1 << 16
"""Nodes a builder is asked for at a time (3.5 MiB of cache file)."""
BUILD_STAGE: Final = "parents"
"""The stage name of the cache build's progress reports."""

Progress: TypeAlias = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, as the phases report (:mod:`sealagent.proofs.kernels`)."""


def reference_parents(graph: StackedGraph, start: int, stop: int) -> ParentsArray:
    """The reference :class:`ParentsBuilder`: :meth:`StackedGraph.all_parents` (numpy)."""
    return graph.all_parents(start, stop)


@dataclass(frozen=True)
class ParentCacheEntry:
    """One entry of the upstream manifest: the digest of a production parent cache file."""

    sector_size: int
    digest: str
    porep_registered_id: int


PARENT_CACHE_MANIFEST: Final[dict[str, ParentCacheEntry]] = {
    "v28-sdr-parent-3f0eef38bb48af1f48ad65e14eb85b4ebfc167cec18cd81764f6d998836c9899":
        ParentCacheEntry(
            2 * KIB, "3da49221e2ed55371b86d0bf3d6526fcf128af61bed904f966428db1b531750d", 0),
    "v28-sdr-parent-494d91dc80f2df5272c4b9e129bc7ade9405225993af9fe34e6542a39a47554b":
        ParentCacheEntry(
            2 * KIB, "840057702eea7652cf97e04306c30fe57174714d90de156a25eddd6075c25b97", 5),
    "v28-sdr-parent-dcdabb0fbe4364bf0ac28b6a18c66de246409fa1a9020a00f33fb3e3053da6dc":
        ParentCacheEntry(
            8 * MIB, "a76604f2f59f2744c7151653bbb1d8596b6b57d295e6fa6c1f0c41d725b502ce", 1),
    "v28-sdr-parent-5eed212119fd91aa6220a27f31a8966444a9381842bceb3a1ea61525bd47a5b5":
        ParentCacheEntry(
            8 * MIB, "03cd13565ded97c240a5f52e54295ad127bd0461b57904cb3a4d79b097bbecab", 6),
    "v28-sdr-parent-2aa9c77c3e58259481351cc4be2079cc71e1c9af39700866545c043bfa30fb42":
        ParentCacheEntry(
            512 * MIB, "3adcc092423aa76d6a7184016893406da44dd974b219a89cd3ece25e4e3018f5", 2),
    "v28-sdr-parent-7ba215a1d2345774ab90b8cb1158d296e409d6068819d7b8c7baf0b25d63dc34":
        ParentCacheEntry(
            512 * MIB, "b5877d1963793efebc261fd8fde4dd6bc59e6b5c7abf52617a4ee023b8dc173a", 7),
    "v28-sdr-parent-e1fa5d5b811ddbd118be3412c4a8c329156b8b8acc72632bca459455b5a05a13":
        ParentCacheEntry(
            32 * GIB, "3c4f9841fcc75aed8c695800e58d08480629f25af3a2aefd81904181d75cc0b6", 3),
    "v28-sdr-parent-21981246c370f9d76c7a77ab273d94bde0ceb4e938292334960bce05585dc117":
        ParentCacheEntry(
            32 * GIB, "93deeac5e3052b6927467d4b2641bb782f05491de18d510147c93eeedd8672da", 8),
    "v28-sdr-parent-8a99e8d6b6be7ab87a56b632e6739ff201c23ea14e99737c74690f0e265574d6":
        ParentCacheEntry(
            64 * GIB, "2778a732ad46a7dc18e0564dfdf59fd321dcde74ab476fd6d3c4e6735d7cd89c", 4),
    "v28-sdr-parent-4905486b7af19558ac3649bc6261411858b6add534438878c4ee3b29d8b9de0b":
        ParentCacheEntry(
            64 * GIB, "2698b74eb2606b55b98d8b095e18b6320b47f46e00075956d48640ccd1641b03", 9),
}
"""rust-fil-proofs ``storage-proofs-porep/parent_cache.json``, keyed by file stem."""

_verified: set[tuple[str, int, int, int]] = set()
_verified_lock = threading.Lock()


def parent_cache_dir() -> Path:
    """Where parent cache files live, resolved from the environment as rust-fil-proofs does.

    ``FIL_PROOFS_PARENT_CACHE`` wins; otherwise ``FIL_PROOFS_CACHE_DIR`` (default
    ``/var/tmp/``) with ``filecoin-parents`` appended as a plain string, exactly like
    upstream (so a base without a trailing slash gives a sibling name, not a child).
    """
    explicit = os.environ.get(PARENT_CACHE_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CACHE_DIR_ENV, DEFAULT_CACHE_BASE) + CACHE_DIR_NAME)


def parent_cache_name(graph: StackedGraph) -> str:
    """The file name: ``v28-sdr-parent-<hex>.cache`` over hasher, identifier, keys, size."""
    h = hashlib.sha256(HASHER_NAME.encode())
    h.update(graph.identifier.encode())
    h.update(struct.pack("<4Q", *graph.feistel_keys))
    h.update(struct.pack("<I", graph.nodes))
    return f"v{CACHE_VERSION}-sdr-parent-{h.hexdigest()}.cache"


def parent_cache_path(registered_proof: RegisteredSealProof | str | int) -> Path:
    """The path of a proof's parent cache file (which may not exist yet)."""
    return parent_cache_dir() / parent_cache_name(StackedGraph.for_proof(registered_proof))


def _expected_size(graph: StackedGraph) -> int:
    """File size of a complete cache: 56 bytes per node."""
    return graph.nodes * NODE_ENTRY_BYTES


def _file_digest(f: io.BufferedReader) -> str:
    """SHA-256 of an open file from its start, read in blocks."""
    f.seek(0)
    return hashlib.file_digest(f, "sha256").hexdigest()


def _identity(path: Path) -> tuple[str, int, int, int]:
    """What makes a verified file the same file: path, inode, size, mtime."""
    st = path.stat()
    return str(path), st.st_ino, st.st_size, st.st_mtime_ns


def _mark_verified(path: Path) -> None:
    """Remember that this exact file passed its checks in this process."""
    with _verified_lock:
        _verified.add(_identity(path))


def _corrupt(path: Path, problem: str) -> CorruptDataError:
    """The error for a bad cache file, telling the operator what to do."""
    return CorruptDataError(
        f"parent cache file {path} {problem}; delete it so that it is rebuilt"
    )


def verify_parent_cache(path: Path, graph: StackedGraph) -> None:
    """Check a cache file's size, and its SHA-256 when the manifest lists it.

    Each file is checked once per process (until it is replaced).  The check holds a
    shared ``flock`` on the file, so it waits while rust-fil-proofs, which builds the
    file in place under an exclusive lock, is still writing it.  Raises
    :class:`CorruptDataError` naming the file.
    """
    with _verified_lock:
        if _identity(path) in _verified:
            return
    with path.open("rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        size = os.fstat(f.fileno()).st_size
        if size != _expected_size(graph):
            raise _corrupt(path, f"has {size} bytes, expected {_expected_size(graph)}")
        entry = PARENT_CACHE_MANIFEST.get(path.name.removesuffix(".cache"))
        if entry is not None:
            digest = _file_digest(f)
            if digest != entry.digest:
                raise _corrupt(path, f"has sha256 {digest}, the manifest says {entry.digest}")
    _mark_verified(path)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``<path>.lock`` (other processes wait)."""
    lock_path = path.with_name(path.name + ".lock")
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _build(path: Path, graph: StackedGraph, builder: ParentsBuilder,
           progress: Progress | None) -> None:
    """Write the cache to a temporary file, check it, fsync it, rename it into place.

    Runs under the build lock, so temporary files left by a builder that died are stale
    and removed first.
    """
    for stale in path.parent.glob(f"{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as f:
            for start in range(0, graph.nodes, BUILD_CHUNK_NODES):
                stop = min(start + BUILD_CHUNK_NODES, graph.nodes)
                data = _checked_rows(builder(graph, start, stop), start, stop).tobytes()
                digest.update(data)
                f.write(data)
                if progress is not None:
                    progress(BUILD_STAGE, stop, graph.nodes)
            f.flush()
            os.fsync(f.fileno())
        entry = PARENT_CACHE_MANIFEST.get(path.name.removesuffix(".cache"))
        if entry is not None and digest.hexdigest() != entry.digest:
            raise CorruptDataError(
                f"the parent cache built for {graph!r} has sha256 {digest.hexdigest()}, "
                f"the manifest says {entry.digest}"
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)
    _mark_verified(path)


def _checked_rows(rows: ParentsArray, start: int, stop: int) -> ParentsArray:
    """A builder's answer as little-endian ``u32`` rows; a wrong shape or type is an error."""
    if not isinstance(rows, np.ndarray) or rows.shape != (stop - start, DEGREE) or (
            rows.dtype.kind != "u" or rows.dtype.itemsize != 4):
        shape = getattr(rows, "shape", None)
        raise InvalidInputError(
            f"the parents builder returned {type(rows).__name__} {shape} for nodes "
            f"[{start}, {stop}), expected ({stop - start}, {DEGREE}) uint32")
    return rows.astype("<u4", copy=False)


def parent_cache_file(registered_proof: RegisteredSealProof | str | int, *,
                      builder: ParentsBuilder = reference_parents,
                      progress: Progress | None = None) -> Path:
    """The proof's parent cache file, built if missing and verified once per process.

    :param builder: computes the parents when the file must be built.
    :param progress: called as ``progress("parents", nodes_done, nodes)`` while building
        (not called when the file exists).
    """
    graph = StackedGraph.for_proof(registered_proof)
    path = parent_cache_dir() / parent_cache_name(graph)
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _exclusive_lock(path):
                if not path.exists():
                    _build(path, graph, builder, progress)
        except OSError as exc:
            raise StorageError(f"cannot build parent cache file {path}: {exc}") from exc
    try:
        verify_parent_cache(path, graph)
    except OSError as exc:
        raise StorageError(f"cannot read parent cache file {path}: {exc}") from exc
    return path


def load_parents(registered_proof: RegisteredSealProof | str | int, *,
                 builder: ParentsBuilder = reference_parents,
                 progress: Progress | None = None) -> ParentsArray:
    """The proof's parents as a read-only ``(nodes, 14)`` uint32 memory map of its cache file.

    ``builder`` and ``progress`` serve a build, as in :func:`parent_cache_file`.
    """
    proof = resolve_proof(registered_proof)
    path = parent_cache_file(proof, builder=builder, progress=progress)
    parents: ParentsArray = np.memmap(path, dtype="<u4", mode="r", shape=(proof.nodes, DEGREE))
    return parents
