"""The child's side of the job protocol: run one phase and write the answer.

The child imports only what it runs: the backends of the chain its parent chose and the
phase's wrappers, by module (:class:`~sealagent.plugins.loading.PluginTarget`); it reads
no package metadata and asks no backend about itself again, so it starts quickly.  The
parent's side is :mod:`sealagent.plugins.jobs`.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from sealagent.errors import PhaseFailedError, PluginError
from sealagent.phase_progress import RateLimited, progress_sink
from sealagent.phases import Phase
from sealagent.plugins.loading import PluginSet, PluginTarget
from sealagent.plugins.progress_file import PROGRESS_FILE, ProgressFileWriter
from sealagent.plugins.running import run_phase
from sealagent.plugins.selection import Selection

JOB_FILE: Final = "job.json"
"""The request, the backend chain and the plugins to import, written by the parent."""
RESULT_FILE: Final = "result.json"
"""The child's answer: the result or the error, and its measurements."""
LOG_FILE: Final = "child.log"
"""The child's stdout and stderr."""


def child_main(argv: Sequence[str]) -> int:
    """Entry point of the child process: run the job in ``argv[0]`` and write the answer."""
    workdir = Path(argv[0])
    try:
        job = json.loads((workdir / JOB_FILE).read_text())
        plugins = PluginSet.load_only({name: PluginTarget(*target)
                                       for name, target in job["plugins"].items()})
        broken = plugins.errors()
        if broken:
            name, error = next(iter(broken.items()))
            raise PluginError(f"plugin {name!r} {error}")
        phase = Phase.parse(job["phase"])
        request = phase.request_type.from_json(job["request"])
        selection = Selection.of_chain(plugins, phase, job["backends"])
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with progress_sink(RateLimited(ProgressFileWriter(workdir / PROGRESS_FILE))):
            run = run_phase(phase, request, selection)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        answer: dict[str, Any] = {
            "ok": True, "backend": run.backend, "result": run.result.to_json(),
            "wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": peak_rss_bytes(children=True),
        }
        status = 0
    except Exception as exc:
        traceback.print_exc()
        message = str(exc) if isinstance(exc, PhaseFailedError) else (
            f"{type(exc).__name__}: {exc}")
        answer, status = {"ok": False, "error": message}, 1
    tmp = workdir / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(answer))
    tmp.replace(workdir / RESULT_FILE)
    return status


def peak_rss_bytes(*, children: bool = False) -> int:
    """This process' peak resident set size so far, in bytes.

    On Linux the peak of this process' own memory (``VmHWM``): ``getrusage`` would report
    at least the peak of the process that forked it, since the kernel keeps
    ``ru_maxrss`` across ``exec``.  Elsewhere ``getrusage``'s.

    :param children: also consider its finished children (the largest of them).
    """
    peak = _own_peak_bytes()
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT
    if children:
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * _MAXRSS_UNIT)
    return peak


_MAXRSS_UNIT: Final = 1 if sys.platform == "darwin" else 1024
"""Bytes per unit of ``ru_maxrss`` (kilobytes on Linux, bytes on macOS)."""
_STATUS_FILE: Final = Path("/proc/self/status")


def _own_peak_bytes() -> int | None:
    """``VmHWM`` from ``/proc/self/status`` in bytes, or ``None`` where there is none."""
    try:
        status = _STATUS_FILE.read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            if unit == "kB":
                return int(value) * 1024
    return None
