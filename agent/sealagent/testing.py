"""Testing a backend against the ``cpu`` reference: same inputs, identical outputs.

A plugin's test suite opts in explicitly::

    pytest_plugins = ["sealagent.testing"]

    from sealagent.testing import assert_backend_matches_reference

    def test_precommit2_matches_reference(sector_inputs, tmp_path):
        import my_backend
        assert_backend_matches_reference(my_backend, "PreCommit2", sector_inputs, tmp_path)

:func:`assert_backend_matches_reference` seals with ``cpu`` up to the phase, runs the phase
once with ``cpu`` and once with the backend from the same starting files (at the same
paths), and asserts that both results are equal and that every file under the sector's
storage root is byte for byte the same.  Commit2 has no reference implementation, so it
cannot be compared this way.
"""

from __future__ import annotations

import dataclasses
import filecmp
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from sealagent.phase_chain import PREREQUISITES, SealState, phase_request

__all__ = ["DEFAULT_PROOF", "SealState", "SectorInputs", "assert_backend_matches_reference",
           "compare_trees", "phase_requests", "reference_selection", "run_requests",
           "seal_with_reference", "sector_inputs"]
from sealagent.phases import (
    AddPieceRequest,
    Phase,
    PhaseRequest,
    PhaseResult,
    SectorPaths,
    SectorRef,
)
from sealagent.plugins import REFERENCE_BACKEND, PluginSet, Selection, run_phase
from sealagent.vocab.registry import resolve_proof

DEFAULT_PROOF: Final = "StackedDrg2KiBV1_1"
"""The proof of :func:`sector_inputs`: a 2 KiB sector seals in about a second."""

@dataclass(frozen=True)
class SectorInputs:
    """Deterministic inputs for sealing one sector: the sector, randomness and pieces."""

    sector: SectorRef
    ticket: str
    seed: str
    piece_files: tuple[str, ...]
    piece_sizes: tuple[int, ...]
    """Unpadded sizes (``127·2^k``) of the pieces, in order."""

    @classmethod
    def create(cls, directory: str | Path, *, proof: str = DEFAULT_PROOF,
               piece_sizes: tuple[int, ...] | None = None, seed: int = 0) -> SectorInputs:
        """Write pseudo-random piece files into ``directory`` and describe the sector.

        :param piece_sizes: unpadded piece sizes; default half and a quarter of the sector.
        :param seed: seeds the piece data, ticket and interactive seed.
        """
        registered = resolve_proof(proof)
        unpadded = registered.sector_size // 128 * 127
        sizes = piece_sizes if piece_sizes is not None else (unpadded // 2, unpadded // 4)
        rng = random.Random(seed)
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        files = []
        for index, size in enumerate(sizes):
            path = base / f"piece-{index}.dat"
            path.write_bytes(rng.randbytes(size))
            files.append(str(path))
        return cls(SectorRef(miner=1000, number=1, proof=registered.name),
                   rng.randbytes(32).hex(), rng.randbytes(32).hex(), tuple(files), sizes)


def phase_requests(phase: Phase, inputs: SectorInputs, root: str | Path,
                   state: SealState) -> list[PhaseRequest]:
    """The request(s) of ``phase`` for the sector stored under ``root``.

    AddPiece gives one request per piece; every other phase gives one, built by the
    phase chain from ``state`` (with the ticket and seed of ``inputs``).
    """
    s, paths = inputs.sector, SectorPaths.under(root, inputs.sector)
    if phase is Phase.ADD_PIECE:
        return [AddPieceRequest(s, paths, size, file, inputs.piece_sizes[:i])
                for i, (file, size) in enumerate(zip(inputs.piece_files, inputs.piece_sizes,
                                                     strict=True))]
    extra = {}
    if phase is Phase.UNSEAL:
        extra = {"offset": 0, "size": s.registered_proof.sector_size // 128 * 127,
                 "output": paths.unsealed + ".recovered"}
    state = dataclasses.replace(state, ticket=inputs.ticket, seed=inputs.seed)
    return [phase_request(phase, s, paths, state, **extra)]


def reference_selection() -> Selection:
    """The ``cpu`` backend alone."""
    return PluginSet.load(autoload=False).select([])


def run_requests(phase: Phase, inputs: SectorInputs, root: str | Path,
                 state: SealState, selection: Selection) -> tuple[SealState, list[PhaseResult],
                                                                  set[str]]:
    """Run every request of ``phase``; returns the new state, results and backends used."""
    results: list[PhaseResult] = []
    backends: set[str] = set()
    for request in phase_requests(phase, inputs, root, state):
        run = run_phase(phase, request, selection)
        state = state.after(run.result)
        results.append(run.result)
        backends.add(run.backend)
    return state, results, backends


def seal_with_reference(inputs: SectorInputs, root: str | Path,
                        phases: tuple[Phase, ...]) -> SealState:
    """Run ``phases`` in order with ``cpu`` for the sector under ``root``."""
    state = SealState(ticket=inputs.ticket, seed=inputs.seed)
    selection = reference_selection()
    for phase in phases:
        state = run_requests(phase, inputs, root, state, selection)[0]
    return state


def compare_trees(expected: Path, actual: Path) -> list[str]:
    """Differences between two directory trees: missing, extra or different files."""
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    want, got = files(expected), files(actual)
    problems = [f"missing: {name}" for name in sorted(want - got)]
    problems += [f"unexpected: {name}" for name in sorted(got - want)]
    problems += [f"differs: {name}" for name in sorted(want & got)
                 if not filecmp.cmp(expected / name, actual / name, shallow=False)]
    return problems


def _candidate_selection(plugin: object) -> tuple[str, Selection]:
    """The backend under test, by installed name or as a plugin object."""
    if isinstance(plugin, str):
        return plugin, PluginSet.load().select([plugin])
    name = "candidate"
    return name, PluginSet.load(autoload=False, extra={name: plugin}).select([name])


def assert_backend_matches_reference(plugin: object, phase: Phase | str,
                                     inputs: SectorInputs | None = None,
                                     workdir: str | Path | None = None
                                     ) -> list[PhaseResult]:
    """Assert that ``plugin`` runs ``phase`` exactly like ``cpu`` does.

    :param plugin: an installed plugin's name, or a plugin module/object.
    :param phase: the phase (any name :meth:`Phase.parse` accepts).
    :param inputs: the sector to seal; default :meth:`SectorInputs.create` in ``workdir``.
    :param workdir: scratch directory; default a temporary one, removed afterwards.
    :returns: the backend's result(s) (several for AddPiece, one per piece).
    :raises AssertionError: the backend declined, or a result or a file differs.
    """
    phase = Phase.parse(phase)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="sealagent-compare-") as tmp:
            return assert_backend_matches_reference(plugin, phase, inputs, tmp)
    work = Path(workdir)
    inputs = inputs or SectorInputs.create(work / "inputs")
    root, before, reference = work / "sector", work / "before", work / "reference"
    root.mkdir(parents=True, exist_ok=True)
    state = seal_with_reference(inputs, root, PREREQUISITES[phase])
    shutil.copytree(root, before, symlinks=True)
    _, expected, _ = run_requests(phase, inputs, root, state, reference_selection())
    root.rename(reference)
    shutil.copytree(before, root, symlinks=True)
    name, selection = _candidate_selection(plugin)
    _, actual, backends = run_requests(phase, inputs, root, state, selection)
    assert backends == {name}, f"{phase.label} ran on {sorted(backends)}, not on {name!r}"
    _assert_same_outcome(phase, name, expected, actual, reference, root)
    return actual


def _assert_same_outcome(phase: Phase, name: str, expected: list[PhaseResult],
                         actual: list[PhaseResult], reference: Path, candidate: Path) -> None:
    """Equal results, and byte-identical files under the two sector roots."""
    for want, got in zip(expected, actual, strict=True):
        assert got.to_json() == want.to_json(), (
            f"{phase.label}: {name!r} returned {got.to_json()}, {REFERENCE_BACKEND!r} "
            f"returned {want.to_json()}")
    problems = compare_trees(reference, candidate)
    assert not problems, f"after {phase.label}: files differ from the reference: {problems}"


SEALING_PHASES: Final = (Phase.ADD_PIECE, Phase.PRECOMMIT1, Phase.PRECOMMIT2, Phase.FINALIZE,
                         Phase.UNSEAL)
"""The phases :func:`assert_sealing_matches_reference` runs: Unseal comes after Finalize, so
it computes the key again from the parent cache."""


def assert_sealing_matches_reference(plugin: object, inputs: SectorInputs | None = None,
                                     workdir: str | Path | None = None,
                                     phases: tuple[Phase, ...] = SEALING_PHASES
                                     ) -> dict[Phase, set[str]]:
    """Seal one sector with ``cpu`` and with ``plugin``; assert they agree after every phase.

    Unlike :func:`assert_backend_matches_reference`, each side continues from its own
    earlier phases, so a whole pipeline is compared for the price of sealing twice.  After
    each phase the results must be equal and every file under the sector's storage root
    byte for byte the same (both sides run at the same path, as file contents such as
    ``t_aux`` name it).  Phases ``plugin`` does not implement run on ``cpu`` on both sides.

    :returns: the backends that ran each phase on the plugin's side.
    :raises AssertionError: a result or a file differs.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="sealagent-compare-") as tmp:
            return assert_sealing_matches_reference(plugin, inputs, tmp, phases)
    work = Path(workdir)
    inputs = inputs or SectorInputs.create(work / "inputs")
    root, reference, candidate = work / "sector", work / "reference", work / "candidate"
    reference.mkdir(parents=True)
    candidate.mkdir()
    name, selection = _candidate_selection(plugin)
    want_state = got_state = SealState()
    used: dict[Phase, set[str]] = {}
    for phase in phases:
        reference.rename(root)
        want_state, expected, _ = run_requests(phase, inputs, root, want_state,
                                               reference_selection())
        root.rename(reference)
        candidate.rename(root)
        got_state, actual, used[phase] = run_requests(phase, inputs, root, got_state,
                                                      selection)
        root.rename(candidate)
        _assert_same_outcome(phase, name, expected, actual, reference, candidate)
    return used


@pytest.fixture
def sector_inputs(tmp_path: Path) -> SectorInputs:
    """A 2 KiB sector (``StackedDrg2KiBV1_1``) with two pseudo-random pieces."""
    return SectorInputs.create(tmp_path / "inputs")
