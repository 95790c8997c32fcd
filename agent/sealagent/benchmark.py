"""Seal one sector end to end and measure every step (``sealagent bench``).

The steps: build/verify the parent cache, AddPiece (random data, or zeros for a
committed-capacity sector), PreCommit1, PreCommit2, Commit1, vanilla verification of the
Commit1 proofs, Commit2 and the SNARK's verification with the verifying key (skipped,
with the reason, when no backend implements Commit2 or the circuit's Groth16 parameters
are missing), Finalize, then Unseal of the whole sector compared with the original data.

Measurements, per step:

* ``wall_s``: elapsed time; ``cpu_s``: user + system time of every thread;
* ``peak_rss_bytes``: by default the steps run in this process, and the peak is the
  largest resident set seen during the step: the process' lifetime peak
  (``getrusage``) when the step raised it, else the highest of samples taken every
  5 ms.  It includes what the process already held (the Python runtime, earlier caches).
  With ``isolate=True`` each phase runs in its own child process
  (:func:`~sealagent.plugins.run_phase_in_subprocess`) and reports that process' own
  peak; wall and CPU time are then measured inside the child around the phase alone.

While a step runs, its progress reports (:mod:`sealagent.phase_progress`: the parent cache
build, each layer, the trees) are printed with the share done and the rate; a step that
says nothing for :data:`HEARTBEAT_S` gets a ``… still running`` line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import psutil

from sealagent.errors import ConfigError, PluginError
from sealagent.phase_chain import SealState, phase_request
from sealagent.phase_progress import (
    ProgressCallback,
    ProgressDescriber,
    ProgressEvent,
    RateLimited,
    progress_sink,
)
from sealagent.phases import (
    AddPieceRequest,
    Commit2Result,
    Phase,
    PhaseRequest,
    PhaseResult,
    SectorPaths,
    SectorRef,
)
from sealagent.plugins import (
    PluginSet,
    Selection,
    peak_rss_bytes,
    run_phase,
    run_phase_in_subprocess,
)
from sealagent.proofs import (
    RegisteredSealProof,
    SealCommitPhase1Output,
    cid_to_sealed_commitment,
    cid_to_unsealed_commitment,
    default_proof,
    parent_cache_file,
    parse_sector_size,
    reference_parents,
    verify_seal_commit_phase1,
)
from sealagent.snark.parameters import parameters_exist
from sealagent.snark.seal import verify_seal
from sealagent.vocab.registry import size_name

BENCH_MINER: Final = 1000
BENCH_SECTOR: Final = 1
LIBRARY: Final = "proofs"
"""The ``backend`` of steps the proofs library runs itself (parent cache, verification)."""

HEARTBEAT_S: Final = 15.0
"""Seconds without a progress line after which a ``… still running`` line is printed."""
POLL_S: Final = 0.5
"""Seconds between two reads of an isolated phase's progress reports."""

_SAMPLE_S: Final = 0.005
_CHUNK: Final = 1 << 20

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StepResult:
    """One row of the report."""

    name: str
    backend: str | None
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_bytes: int | None = None
    skipped: str | None = None
    """Why the step did not run (``None`` when it ran)."""

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON-ready ``dict``."""
        return {"name": self.name, "wall_s": self.wall_s, "cpu_s": self.cpu_s,
                "peak_rss_bytes": self.peak_rss_bytes, "backend": self.backend,
                "skipped": self.skipped}


@dataclass(frozen=True)
class BenchReport:
    """Everything ``sealagent bench`` measured and checked."""

    sector_size: int
    proof: str
    plugins: tuple[str, ...]
    isolated: bool
    committed_capacity: bool
    steps: tuple[StepResult, ...]
    comm_d: str
    comm_r: str
    verified: bool
    unseal_ok: bool

    def step(self, name: str) -> StepResult:
        """The row named ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def pc1_us_per_label(self) -> float | None:
        """PreCommit1 wall time per label computed (nodes × layers), in µs."""
        wall = self.step(Phase.PRECOMMIT1.label).wall_s
        proof = RegisteredSealProof[self.proof]
        return None if wall is None else wall * 1e6 / (proof.nodes * proof.layers)

    @property
    def ok(self) -> bool:
        """True when the proofs verified and the unsealed data matched."""
        return self.verified and self.unseal_ok

    def to_json(self) -> dict[str, Any]:
        """The report in the documented JSON shape."""
        return {
            "sector_size": self.sector_size,
            "sector_size_name": size_name(self.sector_size),
            "proof": self.proof,
            "plugins": list(self.plugins),
            "isolated": self.isolated,
            "cc": self.committed_capacity,
            "phases": [s.to_json() for s in self.steps],
            "comm_d": self.comm_d,
            "comm_r": self.comm_r,
            "verified": self.verified,
            "unseal_ok": self.unseal_ok,
            "pc1_us_per_label": self.pc1_us_per_label,
        }


class _Meter:
    """Wall time, CPU time and peak RSS of this process over a ``with`` block."""

    wall_s: float
    cpu_s: float
    peak_rss_bytes: int

    def __enter__(self) -> _Meter:
        """Start measuring (and sampling RSS in a thread)."""
        self._process = psutil.Process()
        self._peak = int(self._process.memory_info().rss)
        self._maxrss_before = peak_rss_bytes()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    def _sample(self) -> None:
        """Record the highest RSS seen until stopped."""
        while not self._stop.wait(_SAMPLE_S):
            self._peak = max(self._peak, int(self._process.memory_info().rss))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop measuring."""
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = time.process_time() - self._cpu0
        self._stop.set()
        self._sampler.join()
        peak = max(self._peak, int(self._process.memory_info().rss))
        lifetime = peak_rss_bytes()
        self.peak_rss_bytes = lifetime if lifetime > self._maxrss_before else peak


class _StepWatch:
    """Progress lines while one step runs: the step's own reports, else a heartbeat.

    Reports (:mod:`sealagent.phase_progress`) come either through :meth:`report`
    (in-process steps; wrap it in :class:`RateLimited`) or from ``poll`` (an isolated
    phase's child, read every :data:`POLL_S`).  When no line was printed for
    :data:`HEARTBEAT_S`, a ``… still running`` line says the step is alive.
    """

    def __init__(self, progress: Progress, name: str,
                 poll: Callable[[], list[ProgressEvent]] | None = None) -> None:
        """Print through ``progress``, prefixing lines with ``name``."""
        self._progress = progress
        self._name = name
        self._poll = poll
        self._describer = ProgressDescriber()
        self._lock = threading.Lock()
        self._start = self._last_line = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def report(self, event: ProgressEvent) -> None:
        """Print one progress report of the step."""
        with self._lock:
            line = self._describer.describe(event)
            self._last_line = time.monotonic()
        self._progress(f"{self._name}: {line}")

    def _drain(self) -> None:
        """Print the reports ``poll`` has for us."""
        for event in self._poll() if self._poll is not None else ():
            self.report(event)

    def _watch(self) -> None:
        """Poll for reports; beat when the step has been quiet too long."""
        while not self._stop.wait(min(POLL_S, HEARTBEAT_S)):
            self._drain()
            now = time.monotonic()
            with self._lock:
                quiet = now - self._last_line >= HEARTBEAT_S
                if quiet:
                    self._last_line = now
            if quiet:
                self._progress(f"{self._name} … still running ({now - self._start:.0f} s)")

    def __enter__(self) -> _StepWatch:
        """Start watching."""
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop watching; print the reports that came in last."""
        self._stop.set()
        self._thread.join()
        self._drain()


class _Bench:
    """One benchmark run in ``root``."""

    def __init__(self, proof: RegisteredSealProof, selection: Selection, root: Path, *,
                 isolate: bool, progress: Progress) -> None:
        self.proof = proof
        self.selection = selection
        self.root = root
        self.isolate = isolate
        self.progress = progress
        self.sector = SectorRef(BENCH_MINER, BENCH_SECTOR, proof.name)
        self.paths = SectorPaths.under(root, self.sector)
        self.steps: list[StepResult] = []

    def library_step(self, name: str, fn: Callable[[ProgressCallback], Any], *,
                     backend: str = LIBRARY) -> Any:
        """Run a step in this process and record it; ``fn`` gets a progress callback."""
        self.progress(f"{name} …")
        with _StepWatch(self.progress, name) as watch, _Meter() as meter:
            value = fn(RateLimited(watch.report))
        self._record(StepResult(name, backend, meter.wall_s, meter.cpu_s,
                                meter.peak_rss_bytes))
        return value

    def parents(self) -> None:
        """Build (or verify) the parent cache, with the chosen backend's builder if any."""
        found = self.selection.plugins.parents_builder(self.selection.runnable)
        backend, builder = found if found is not None else (LIBRARY, reference_parents)
        self.library_step("Parents", lambda report: parent_cache_file(
            self.proof, builder=builder, progress=report), backend=backend)

    def phase(self, request: PhaseRequest) -> PhaseResult:
        """Run one phase on the selected backend and record it."""
        phase = request.phase
        self.progress(f"{phase.label} …")
        if self.isolate:
            process = run_phase_in_subprocess(phase, request, self.selection)
            with _StepWatch(self.progress, phase.label, process.progress):
                outcome = process.wait()
            run = outcome.as_run()
            step = StepResult(phase.label, run.backend, outcome.wall_s, outcome.cpu_s,
                              outcome.peak_rss_bytes)
        else:
            with (_StepWatch(self.progress, phase.label) as watch,
                  progress_sink(RateLimited(watch.report)), _Meter() as meter):
                run = run_phase(phase, request, self.selection)
            step = StepResult(phase.label, run.backend, meter.wall_s, meter.cpu_s,
                              meter.peak_rss_bytes)
        self._record(step)
        return run.result_as(phase.result_type)

    def _record(self, step: StepResult) -> None:
        """Keep a row and report it."""
        self.steps.append(step)
        if step.skipped:
            self.progress(f"{step.name}: skipped: {step.skipped}")
        else:
            self.progress(f"{step.name}: {step.wall_s:.3f} s on {step.backend}")

    def _commit2_skip_reason(self) -> str | None:
        """Why Commit2 cannot run here (no backend, no parameters), or None."""
        try:
            self.selection.candidates(Phase.COMMIT2)
        except PluginError as exc:
            return str(exc)
        if not parameters_exist(self.proof):
            name = size_name(self.proof.sector_size)
            return (f"no Groth16 parameters for {name} (create them once with "
                    f"'sealagent params generate --sector-size {name}')")
        return None

    def run(self, cc: bool) -> BenchReport:
        """Seal, verify, finalize and unseal one sector."""
        unpadded = self.proof.sector_size // 128 * 127
        piece_file = None if cc else self.root / "piece.dat"
        if piece_file is not None:
            _write_random(piece_file, unpadded)
        self.parents()
        s, paths = self.sector, self.paths
        source = None if piece_file is None else str(piece_file)
        state = SealState(ticket=os.urandom(32).hex(), seed=os.urandom(32).hex())
        state = state.after(self.phase(AddPieceRequest(s, paths, unpadded, source)))
        for phase in (Phase.PRECOMMIT1, Phase.PRECOMMIT2, Phase.COMMIT1):
            state = state.after(self.phase(phase_request(phase, s, paths, state)))
        c1_output = state.c1_output or ""
        verified = bool(self.library_step("Verify", lambda _: verify_seal_commit_phase1(
            SealCommitPhase1Output.from_json(c1_output), s.prover_id, s.number)))
        skip = self._commit2_skip_reason()
        if skip:
            self._record(StepResult(Phase.COMMIT2.label, None, skipped=skip))
        else:
            c2 = self.phase(phase_request(Phase.COMMIT2, s, paths, state))
            assert isinstance(c2, Commit2Result)
            verified = bool(self.library_step("VerifySeal", lambda _: verify_seal(
                self.proof, cid_to_sealed_commitment(state.comm_r or ""),
                cid_to_unsealed_commitment(state.comm_d or ""), s.prover_id, s.number,
                bytes.fromhex(state.ticket or ""), bytes.fromhex(state.seed or ""),
                bytes.fromhex(c2.proof)))) and verified
        self.phase(phase_request(Phase.FINALIZE, s, paths, state))
        recovered = self.root / "recovered.dat"
        self.phase(phase_request(Phase.UNSEAL, s, paths, state, offset=0, size=unpadded,
                                 output=str(recovered)))
        unseal_ok = _same_data(recovered, piece_file, unpadded)
        self.progress("unsealed data " + ("matches" if unseal_ok else "DIFFERS"))
        return BenchReport(self.proof.sector_size, self.proof.name,
                           self.selection.requested, self.isolate, cc, tuple(self.steps),
                           state.comm_d or "", state.comm_r or "", verified, unseal_ok)


def _write_random(path: Path, size: int) -> None:
    """Write ``size`` random bytes."""
    with path.open("wb") as f:
        for start in range(0, size, _CHUNK):
            f.write(os.urandom(min(_CHUNK, size - start)))


def _same_data(path: Path, original: Path | None, size: int) -> bool:
    """True when ``path`` holds exactly ``original``'s bytes (or ``size`` zeros)."""
    if not path.is_file() or path.stat().st_size != size:
        return False
    with contextlib.ExitStack() as stack:
        got = stack.enter_context(path.open("rb"))
        want = stack.enter_context(original.open("rb")) if original else None
        for start in range(0, size, _CHUNK):
            n = min(_CHUNK, size - start)
            if got.read(n) != (want.read(n) if want else bytes(n)):
                return False
    return True


@contextlib.contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    """``keep`` (created, must be empty), or a temporary directory removed afterwards."""
    if keep is None:
        path = Path(tempfile.mkdtemp(prefix="sealagent-bench-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
        return
    if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise ConfigError(f"--keep directory {keep} exists and is not empty")
    keep.mkdir(parents=True, exist_ok=True)
    yield keep


def run_bench(sector_size: int | str, plugins: Sequence[str] = (), *, cc: bool = False,
              keep: Path | None = None, isolate: bool = False,
              progress: Progress | None = None,
              plugin_set: PluginSet | None = None) -> BenchReport:
    """Seal one sector of ``sector_size`` (``"2KiB"``, ``"8MiB"``, …) and measure it.

    :param plugins: backends to prefer, in order (``cpu`` runs whatever they do not).
    :param cc: seal zeros (a committed-capacity sector) instead of random data.
    :param keep: seal in this directory and leave the files there.
    :param isolate: run each phase in its own child process (see the module docs).
    :param progress: receives one line before and after each step.
    :param plugin_set: the plugins to choose from (default: this process' plugins).
    :raises PluginNotFoundError: a plugin name is not installed.
    :raises PhaseFailedError: a phase failed.
    """
    proof = default_proof(parse_sector_size(sector_size))
    plugin_set = plugin_set or PluginSet.load()
    selection = plugin_set.select(plugins)
    with _workdir(keep) as root:
        bench = _Bench(proof, selection, root, isolate=isolate,
                       progress=progress or (lambda line: None))
        return bench.run(cc)
