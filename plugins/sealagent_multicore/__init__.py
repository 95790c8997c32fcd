"""``multicore``: AddPiece, PreCommit1, PreCommit2, Commit2 and Unseal with compiled kernels.

The phases are the reference's (:mod:`sealagent_cpu`, :mod:`sealagent.proofs`: same files,
same checks, byte-identical results); only their kernels are swapped
(:mod:`sealagent.proofs.kernels`):

* the SDR labeler is a numba-compiled loop calling OpenSSL's SHA-256
  (:mod:`sealagent_multicore.labeler`), for PreCommit1 and for Unseal's key;
* the SHA256-trunc254 trees (CommP in AddPiece of pieces from 32 MiB, tree_d in
  PreCommit1) hash their pairs with OpenSSL's SHA-256 from compiled code
  (:mod:`sealagent_multicore.sha256`);
* the parent cache, where a host has none yet, is built by a numba-compiled ChaCha8 and
  Feistel loop on the phase's threads (:mod:`sealagent_multicore.parents`), also for
  ``sealagent bench`` (the ``sealagent_parents_builder`` hook);
* the column hashes, tree_c and tree_r_last use a numba-compiled, batched Poseidon
  (:mod:`sealagent_multicore.poseidon`), each row split over the phase's threads;
* Commit2's seven transforms of the H polynomial are a numba-compiled NTT over Fr
  (:mod:`sealagent_multicore.ntt`, the :mod:`sealagent.snark.kernels` seam) on the
  phase's threads; the rest of the prover (QAP, MSMs, proof, verification) is ``cpu``'s.

It uses exactly the thread count the phase was granted (``$SEALAGENT_THREADS``, set by the
agent; otherwise the CPUs this process may use).  Compiled kernels are cached on disk
(:func:`~sealagent_multicore.environment.kernel_cache_dir`, shown by ``sealagent
plugins``); ``sealagent plugins --warm multicore`` fills the cache, and an agent started
with ``--plugin multicore`` does so before it opens its first window.  Without numba (the
``sealagent[multicore]`` extra) or libcrypto the backend says why and ``cpu`` runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sealagent import __version__, hookimpl
from sealagent.phases import (
    AddPieceRequest,
    AddPieceResult,
    BackendInfo,
    Commit2Request,
    Commit2Result,
    PreCommit1Request,
    PreCommit1Result,
    PreCommit2Request,
    PreCommit2Result,
    UnsealRequest,
    UnsealResult,
)
from sealagent.proofs.fr32 import to_padded_size
from sealagent.proofs.kernels import SealKernels, replica_tree_builder_with, tree_builder_with
from sealagent.proofs.parent_cache import ParentsBuilder
from sealagent.snark.kernels import ProverKernels

if TYPE_CHECKING:
    from sealagent_multicore.sha256 import CompiledSha256
from sealagent_cpu import addpiece, commit2, precommit1, precommit2, unseal
from sealagent_multicore.environment import (
    granted_threads,
    kernel_cache_dir,
    missing_requirement,
    prepare_kernel_cache,
)

NAME: Final = "multicore"
MIN_COMPILED_PIECE: Final = 32 << 20
"""Smallest padded piece AddPiece hashes with compiled code.  Loading numba and the kernel
costs a child about 0.3 s of CPU; hashlib hashes CommP's pairs at about 1 µs each, the
compiled loop at about 0.15 µs, so the compiled path pays from about half a million
pairs (16 MiB) on."""
_LOCK_FILE: Final = ".warm.lock"


@hookimpl
def sealagent_backend_info() -> BackendInfo:
    """Available where numba and libcrypto are; names the kernel cache."""
    reason = missing_requirement()
    return BackendInfo(name=NAME, version=__version__,
                       description="compiled SDR labeling and SHA-256 trees (OpenSSL), "
                                   "parent cache, batched Poseidon and Commit2's NTT on the "
                                   "granted cores (numba)",
                       available=reason is None, reason=reason,
                       kernel_cache=str(kernel_cache_dir()))


@contextlib.contextmanager
def _cache_lock() -> Iterator[Path]:
    """Hold the kernel cache's lock: one process compiles, the others wait, then load."""
    path = prepare_kernel_cache()
    with open(path / _LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(progress: Callable[[str], None], *, labeler: bool = True,
          poseidon: bool = True, ntt: bool = True) -> None:
    """Compile or load the chosen kernels, holding the cache lock.

    ``labeler`` loads the SDR labeler, the pair hasher and the parents builder (AddPiece,
    PreCommit1, Unseal).
    """
    with _cache_lock() as path:
        progress(f"kernel cache {path}")
        if labeler:
            progress("SDR labeler (SHA-256 via libcrypto) …")
            from sealagent_multicore import labeler as compiled_labeler

            compiled_labeler.warm()
            progress("SHA256-trunc254 pairs (AddPiece, tree_d) …")
            from sealagent_multicore import sha256

            sha256.warm()
            progress("parent cache builder (ChaCha8, Feistel) …")
            from sealagent_multicore import parents

            parents.warm()
        if poseidon:
            progress("Poseidon (arities 2, 4, 8, 11) …")
            from sealagent_multicore.poseidon import PoseidonRows

            PoseidonRows(1).warm()
        if ntt:
            progress("NTT over Fr (Commit2) …")
            from sealagent_multicore.ntt import CompiledNtt

            CompiledNtt(1).warm()


@functools.cache
def parents_builder(threads: int) -> ParentsBuilder:
    """The compiled parent cache builder on ``threads`` threads."""
    _load(lambda line: None, poseidon=False, ntt=False)
    from sealagent_multicore.parents import CompiledParents

    return CompiledParents(threads)


@functools.cache
def sha256_pairs(threads: int) -> CompiledSha256:
    """The compiled SHA256-trunc254 pair hasher on ``threads`` threads."""
    _load(lambda line: None, poseidon=False, ntt=False)
    from sealagent_multicore.sha256 import CompiledSha256

    return CompiledSha256(threads)


@functools.cache
def labeling_kernels(threads: int) -> SealKernels:
    """The reference kernels with the compiled labeler, tree_d and parents (PC1, Unseal).

    Labeling uses one thread; tree_d and the parent cache (when it is missing) ``threads``.
    """
    builder = parents_builder(threads)
    tree_d = tree_builder_with(sha256_pairs(threads).tree_hasher())
    from sealagent_multicore.labeler import label_layer

    return SealKernels(parents_builder=builder, labeler=label_layer, tree_d_builder=tree_d,
                       name="multicore labeler")


@functools.cache
def tree_kernels(threads: int) -> SealKernels:
    """The reference kernels with compiled Poseidon on ``threads`` threads (PreCommit2)."""
    _load(lambda line: None, labeler=False, ntt=False)
    from sealagent_multicore.poseidon import PoseidonRows

    rows = PoseidonRows(threads)
    hasher = rows.tree_hasher()
    return SealKernels(column_hasher=rows.hash_columns,
                       tree_c_builder=tree_builder_with(hasher),
                       tree_r_last_builder=replica_tree_builder_with(hasher),
                       name=f"multicore Poseidon ({threads} threads, "
                            f"{'8 lanes, AVX-512 IFMA' if rows.ifma else 'scalar'})")


@functools.cache
def prover_kernels(threads: int) -> ProverKernels:
    """The prover's kernels with the compiled NTT on ``threads`` threads (Commit2)."""
    _load(lambda line: None, labeler=False, poseidon=False)
    from sealagent_multicore.ntt import CompiledNtt

    return ProverKernels(quotient=CompiledNtt(threads).quotient,
                         name=f"multicore NTT ({threads} threads)")


@hookimpl
def sealagent_warm(progress: Callable[[str], None]) -> None:
    """Compile the labeler, the parents builder, the Poseidon kernel and the NTT, or load them."""
    _load(progress)


@hookimpl
def sealagent_parents_builder() -> ParentsBuilder:
    """The compiled parent cache builder on the granted threads."""
    return parents_builder(granted_threads())


@hookimpl
def sealagent_addpiece(request: AddPieceRequest) -> AddPieceResult | None:
    """AddPiece with CommP's pairs hashed by compiled code (OpenSSL's SHA-256).

    Declines pieces under :data:`MIN_COMPILED_PIECE` (``cpu`` adds them): loading the
    compiled code costs more than it saves there.
    """
    if to_padded_size(request.piece_size) < MIN_COMPILED_PIECE:
        return None
    return addpiece(request, sha256_pairs(granted_threads()).hash_pairs)


@hookimpl
def sealagent_precommit1(request: PreCommit1Request) -> PreCommit1Result:
    """PreCommit1 with the compiled labeler (one thread per sector: labels are sequential)."""
    return precommit1(request, labeling_kernels(granted_threads()))


@hookimpl
def sealagent_precommit2(request: PreCommit2Request) -> PreCommit2Result:
    """PreCommit2 with compiled Poseidon over the granted threads."""
    return precommit2(request, tree_kernels(granted_threads()))


@hookimpl
def sealagent_commit2(request: Commit2Request) -> Commit2Result:
    """Commit2 with the compiled NTT over the granted threads; verified before it returns."""
    return commit2(request, prover_kernels(granted_threads()))


@hookimpl
def sealagent_unseal(request: UnsealRequest) -> UnsealResult:
    """Unseal; the key, when the cache no longer holds it, comes from the compiled labeler."""
    return unseal(request, labeling_kernels(granted_threads()))
