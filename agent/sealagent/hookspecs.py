"""The plugin contract: every hook a sealagent backend can implement.

Quick start for a backend author::

    # pyproject.toml
    [project.entry-points.sealagent]
    my-backend = "my_backend"

    # my_backend/__init__.py
    from sealagent import hookimpl
    from sealagent.phases import BackendInfo, PreCommit2Request, PreCommit2Result

    @hookimpl
    def sealagent_backend_info() -> BackendInfo:
        return BackendInfo(name="my-backend", description="…", version="1.0")

    @hookimpl
    def sealagent_precommit2(request: PreCommit2Request) -> PreCommit2Result | None:
        ...

Rules:

* Hooks are plain synchronous functions, prefixed ``sealagent_``.  A backend implements
  only the phases it does better; the operator picks backends by name
  (``--plugin my-backend``) and every phase without a chosen implementation falls back to
  the ``cpu`` reference backend.
* A phase hook reads and writes the sector's files exactly as the reference does, and
  returns the result message, or ``None`` to decline this request (for example an
  unsupported sector size); the next chosen backend then gets it.
* Phase hooks run in a child process that the scheduler gave a thread count and GPUs
  (``OMP_NUM_THREADS``, ``CUDA_VISIBLE_DEVICES``); they may block, use every granted core
  and call native code.  Raising any exception fails the phase; its message reaches the
  operator.
* :mod:`sealagent.testing` checks a backend against ``cpu`` on the same inputs.

Only the core calls these hooks, through :mod:`sealagent.plugins`, and only on the backend
it selected (with every other backend left out of the call): the phase hooks are
``firstresult`` so that calling one through pluggy directly also gives one answer.  The
call goes through pluggy, so a plugin with ``@hookimpl(wrapper=True)`` implementations
observes every phase without running one.  docs/plugins.md is the backend author's guide.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from sealagent import PROJECT_NAME
from sealagent.phases import (
    AddPieceRequest,
    AddPieceResult,
    BackendInfo,
    Commit1Request,
    Commit1Result,
    Commit2Request,
    Commit2Result,
    FinalizeRequest,
    FinalizeResult,
    PreCommit1Request,
    PreCommit1Result,
    PreCommit2Request,
    PreCommit2Result,
    UnsealRequest,
    UnsealResult,
)
from sealagent.proofs.parents_builder import ParentsBuilder

_hookspec = pluggy.HookspecMarker(PROJECT_NAME)

# --------------------------------------------------------------------------------------
# Describing the backend
# --------------------------------------------------------------------------------------


@_hookspec
def sealagent_backend_info() -> BackendInfo:  # type: ignore[empty-body]
    """Describe this backend and say whether it can run on this host.

    Called once per process when plugins are listed or selected, so it should be quick;
    it may probe hardware (count CUDA devices) but must not start heavy work.

    :returns: name (the entry-point name), description, version, and ``available=False``
        with a ``reason`` (``"no CUDA GPU"``) when the backend cannot run here.  An
        unavailable backend is skipped during selection and ``cpu`` runs instead.
    """


@_hookspec
def sealagent_warm(progress: Callable[[str], None]) -> None:
    """Compile or load this backend's kernels now, so that no phase pays for it.

    Called by ``sealagent plugins --warm`` and by an agent before it opens its first
    window, only on an available backend; a backend without compiled code need not
    implement it.  Results must be cached where every later process finds them (and
    where ``backend_info``'s ``kernel_cache`` says); several processes may warm at once
    and must leave a sound cache.

    :param progress: receives one line of text per step (``"compiling Poseidon …"``).
    :returns: nothing; raising fails the warm-up (its message reaches the operator).
    """


@_hookspec
def sealagent_parents_builder() -> ParentsBuilder | None:
    """A faster builder of the parent cache's contents, or ``None``.

    The parent cache file (docs/porep.md §5.4) is built once per host, when the first
    PreCommit1/Unseal of a sector size needs it or when ``sealagent bench`` prepares it;
    the core keeps its format, name, location, locking and digest check and asks the
    builder only for the parents of ranges of nodes
    (:class:`~sealagent.proofs.parent_cache.ParentsBuilder`, byte for byte
    :meth:`~sealagent.proofs.graph.StackedGraph.all_parents`).  Called in the process
    that builds, only on an available backend the operator chose; it may compile or load
    kernels and use the threads that process was granted.  A backend's own phases pass
    their builder through :class:`~sealagent.proofs.kernels.SealKernels` instead.

    :returns: the builder, or ``None`` for the reference's.
    """


# --------------------------------------------------------------------------------------
# Sealing phases, in pipeline order
# --------------------------------------------------------------------------------------


@_hookspec(firstresult=True)
def sealagent_addpiece(request: AddPieceRequest) -> AddPieceResult | None:
    """Write one piece into the sector's unsealed file (Lotus task ``seal/v0/addpiece``).

    The piece goes after ``request.existing_piece_sizes``, preceded by the zero fill that
    aligns it to its own size; the unsealed file holds Fr32-padded data.

    :param request: the sector, its paths, the piece file (``None`` for zeros) and sizes.
    :returns: the piece's CID and padded size, its unpadded offset and the bytes
        written, or ``None`` to decline.

    Stops at first non-None result.
    """


@_hookspec(firstresult=True)
def sealagent_precommit1(request: PreCommit1Request) -> PreCommit1Result | None:
    """Compute the SDR labels of every layer (Lotus task ``seal/v0/precommit/1``).

    Reads the unsealed file, writes the layer files into the cache directory and the
    parent cache where ``FIL_PROOFS_PARENT_CACHE`` points.

    :param request: the sector, its paths, the ticket and the pieces (their CommD must
        match the unsealed data).
    :returns: the PreCommit1 output as the proofs library's JSON text, or ``None`` to
        decline.

    Stops at first non-None result.
    """


@_hookspec(firstresult=True)
def sealagent_precommit2(request: PreCommit2Request) -> PreCommit2Result | None:
    """Build tree_c and tree_r_last and write the sealed replica (``seal/v0/precommit/2``).

    :param request: the sector, its paths and the PreCommit1 output.
    :returns: ``comm_d`` and ``comm_r`` as CIDs, or ``None`` to decline.

    Stops at first non-None result.
    """


@_hookspec(firstresult=True)
def sealagent_commit1(request: Commit1Request) -> Commit1Result | None:
    """Produce the vanilla proofs for the seed's challenges (``seal/v0/commit/1``).

    :param request: the sector, its paths, ticket, seed, pieces and the commitments
        PreCommit2 returned.
    :returns: the Commit1 output as the proofs library's JSON text, or ``None`` to
        decline.

    Stops at first non-None result.
    """


@_hookspec(firstresult=True)
def sealagent_commit2(request: Commit2Request) -> Commit2Result | None:
    """Prove the Commit1 output with the Groth16 SNARK (``seal/v0/commit/2``).

    :param request: the sector and the Commit1 output.
    :returns: the proof bytes (192 per partition) as hex, or ``None`` to decline.

    Stops at first non-None result.
    """


@_hookspec(firstresult=True)
def sealagent_unseal(request: UnsealRequest) -> UnsealResult | None:
    """Recover a range of the original data from the sealed replica (``seal/v0/unseal``).

    :param request: the sector, its paths, ticket, ``comm_d``, the unpadded range and
        the file that receives the unpadded bytes.
    :returns: the number of bytes written, or ``None`` to decline.

    Stops at first non-None result.
    """


@_hookspec(firstresult=True)
def sealagent_finalize(request: FinalizeRequest) -> FinalizeResult | None:
    """Remove what proving does not need (``seal/v0/finalize``).

    Clears the cache directory as filecoin-proofs' ``clear_cache`` does (keeping
    ``p_aux``, ``t_aux`` and tree_r_last) and removes the unsealed file unless
    ``request.keep_unsealed``.

    :param request: the sector, its paths and whether to keep the unsealed file.
    :returns: the paths removed, or ``None`` to decline.

    Stops at first non-None result.
    """
