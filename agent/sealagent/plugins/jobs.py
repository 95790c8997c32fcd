"""The parent's side of the child-process job protocol: a phase in its own process.

The agent runs each phase in a child process with the thread count and GPUs it was
granted (:func:`run_phase_in_subprocess`, or :class:`PhaseJob` for an async caller).  The
request and the result travel as JSON files in a small working directory; the child's
output goes to a log file there, and its progress reports
(:mod:`sealagent.phase_progress`) to a file of JSON lines the parent reads as they come
(:meth:`PhaseJob.progress_reader`, :meth:`PhaseProcess.progress`).  Killing the child's
process group aborts the phase.  The child's side is :mod:`sealagent.plugins.child`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from sealagent.errors import InvalidInputError, PhaseCancelledError, PhaseFailedError
from sealagent.phase_progress import ProgressEvent
from sealagent.phases import Phase, PhaseRequest, PhaseResult
from sealagent.plugins.child import JOB_FILE, LOG_FILE, RESULT_FILE
from sealagent.plugins.progress_file import PROGRESS_FILE, ProgressFileReader
from sealagent.plugins.running import PhaseRun
from sealagent.plugins.selection import Selection

THREAD_ENV_VARS: Final = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "RAYON_NUM_THREADS",
    "SEALAGENT_THREADS",
)
"""Environment variables a child gets set to its granted thread count."""


_LOG_TAIL_CHARS: Final = 2000


def phase_environment(*, threads: int | None = None, gpus: Sequence[str] | None = None,
                      env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a phase's child process.

    :param threads: sets every variable of :data:`THREAD_ENV_VARS`.
    :param gpus: GPU indices or UUIDs for ``CUDA_VISIBLE_DEVICES``; ``[]`` hides all GPUs,
        ``None`` leaves the variable as inherited.
    :param env: more variables, applied last.
    """
    out = dict(os.environ)
    if threads is not None:
        if threads < 1:
            raise InvalidInputError(f"threads must be at least 1, got {threads}")
        out.update({var: str(threads) for var in THREAD_ENV_VARS})
    if gpus is not None:
        out["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    out.update(env or {})
    return out


@dataclass(frozen=True)
class PhaseOutcome:
    """What a child process reports: result, backend, and its own measurements."""

    result: PhaseResult
    backend: str
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int

    def as_run(self) -> PhaseRun:
        """The result and backend, as :func:`run_phase` returns them."""
        return PhaseRun(self.result, self.backend)


@dataclass
class PhaseJob:
    """A phase prepared to run as ``argv`` with ``env``; files live in ``workdir``.

    :func:`run_phase_in_subprocess` runs it with :mod:`subprocess`; an async caller can run
    ``argv`` itself (e.g. ``trio.run_process(job.argv, env=job.env)``, output to
    ``job.log_path``) and then call :meth:`collect`.
    """

    phase: Phase
    workdir: Path
    argv: list[str]
    env: dict[str, str]
    owns_workdir: bool

    @classmethod
    def prepare(cls, phase: Phase | str, request: PhaseRequest, selection: Selection, *,
                threads: int | None = None, gpus: Sequence[str] | None = None,
                env: Mapping[str, str] | None = None,
                workdir: str | Path | None = None) -> PhaseJob:
        """Write the job file and build the command line (see :func:`phase_environment`)."""
        phase = Phase.parse(phase)
        if not isinstance(request, phase.request_type):
            raise InvalidInputError(f"{phase.label} needs a {phase.request_type.__name__}, "
                                    f"got {type(request).__name__}")
        chain = selection.candidates(phase)
        environment = phase_environment(threads=threads, gpus=gpus, env=env)
        job = json.dumps({
            "phase": phase.task_type,
            "request": request.to_json(),
            "backends": list(chain),
            "plugins": {name: list(target) for name, target
                        in selection.plugins.child_targets(chain, phase).items()},
        })
        owns = workdir is None
        path = Path(workdir or tempfile.mkdtemp(prefix="sealagent-phase-"))
        path.mkdir(parents=True, exist_ok=True)
        (path / JOB_FILE).write_text(job)
        (path / RESULT_FILE).unlink(missing_ok=True)
        (path / PROGRESS_FILE).unlink(missing_ok=True)
        argv = [sys.executable, "-c",
                "import sys; from sealagent.plugins.child import child_main; "
                "sys.exit(child_main(sys.argv[1:]))", str(path)]
        return cls(phase, path, argv, environment, owns)

    @property
    def log_path(self) -> Path:
        """The file for the child's stdout and stderr."""
        return self.workdir / LOG_FILE

    def progress_reader(self) -> ProgressFileReader:
        """A reader of the child's progress reports (each reader reads them all once)."""
        return ProgressFileReader(self.workdir / PROGRESS_FILE)

    def log_tail(self) -> str:
        """The end of the child's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-_LOG_TAIL_CHARS:].strip()

    def collect(self, returncode: int, *, killed: bool = False) -> PhaseOutcome:
        """Read the child's answer after it exited with ``returncode``.

        :raises PhaseCancelledError: ``killed`` is true (the caller aborted the phase).
        :raises PhaseFailedError: the phase failed in the child (its message), or the
            child died without answering (its exit status and last output).
        """
        label = self.phase.label
        if killed:
            raise PhaseCancelledError(f"{label} was cancelled")
        try:
            answer = json.loads((self.workdir / RESULT_FILE).read_text())
        except (OSError, ValueError):
            how = (f"was killed by signal {signal.Signals(-returncode).name}"
                   if returncode < 0 else f"exited with status {returncode}")
            tail = self.log_tail()
            ending = f"; its output ends with:\n{tail}" if tail else ""
            raise PhaseFailedError(
                f"{label}: the child process {how} without a result{ending}") from None
        if not answer.get("ok"):
            raise PhaseFailedError(str(answer.get("error", f"{label} failed in the child")))
        result = self.phase.result_type.from_json(answer["result"])
        return PhaseOutcome(result, str(answer["backend"]), float(answer["wall_s"]),
                            float(answer["cpu_s"]), int(answer["peak_rss_bytes"]))

    def cleanup(self) -> None:
        """Remove the working directory if this job created it."""
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class PhaseProcess:
    """A phase running in a child process: wait for it, or kill it."""

    def __init__(self, job: PhaseJob) -> None:
        """Start ``job``'s child in its own process group."""
        self.job = job
        self._killed = False
        self._progress = job.progress_reader()
        self._unread: list[ProgressEvent] = []
        try:
            with job.log_path.open("wb") as log:
                self._popen = subprocess.Popen(job.argv, env=job.env,
                                               stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=subprocess.STDOUT,
                                               start_new_session=True)
        except BaseException:
            job.cleanup()
            raise

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self._popen.pid

    def progress(self) -> list[ProgressEvent]:
        """The child's progress reports since the last call (also after :meth:`wait`)."""
        unread, self._unread = self._unread, []
        return unread + self._progress.read()

    def done(self) -> bool:
        """True once the child has exited."""
        return self._popen.poll() is not None

    def kill(self) -> None:
        """Abort the phase: SIGKILL the child's process group.  Safe to call twice."""
        if self._popen.poll() is None:
            self._killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)

    def wait(self) -> PhaseOutcome:
        """Block until the child exits, then return its outcome (see :meth:`PhaseJob.collect`).

        The working directory is removed afterwards if the job created it.
        """
        try:
            returncode = self._popen.wait()
            return self.job.collect(returncode, killed=self._killed)
        finally:
            self._unread.extend(self._progress.read())
            self.job.cleanup()

    def __enter__(self) -> PhaseProcess:
        """Use as a context manager: the child is killed if still running on exit."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Kill a still-running child and reap it."""
        self.kill()
        self._popen.wait()
        self.job.cleanup()


def run_phase_in_subprocess(phase: Phase | str, request: PhaseRequest, selection: Selection,
                            *, threads: int | None = None, gpus: Sequence[str] | None = None,
                            env: Mapping[str, str] | None = None,
                            workdir: str | Path | None = None) -> PhaseProcess:
    """Start ``phase`` in a child process and return a handle to wait for or kill it.

    The child loads the plugins again, tries the same backend chain, and reports the
    result with its own wall time, CPU time and peak RSS.

    :param threads: thread limit for the child (``OMP_NUM_THREADS`` and friends).
    :param gpus: GPUs the child may see (``CUDA_VISIBLE_DEVICES``); ``[]`` for none.
    :param env: extra environment variables.
    :param workdir: where the job, result and log files go (default: a temporary
        directory, removed when the phase ends).
    """
    job = PhaseJob.prepare(phase, request, selection, threads=threads, gpus=gpus, env=env,
                           workdir=workdir)
    return PhaseProcess(job)
