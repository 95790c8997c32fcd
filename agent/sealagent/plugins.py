"""Backends: loading them, choosing one per phase, running a phase in- or out-of-process.

Loading (:meth:`PluginSet.load`): every entry point of group ``sealagent`` is imported
and registered under its entry-point name; the built-in backends are also known by
module name (:data:`BUILTIN_PLUGINS`), so a stale install still has ``cpu``.  A plugin
that fails to import or validate is kept aside with its error instead of breaking the
process.  ``SEALAGENT_DISABLE_PLUGIN_AUTOLOAD=1`` skips the entry points.

Selection (:meth:`PluginSet.select`, :func:`select_backends`): for each phase, the
operator's chosen plugins in order, those that implement the phase and are available,
then ``cpu``.  The first one that does not decline runs it (:func:`run_phase`).

Isolation (:func:`run_phase_in_subprocess`): the agent runs each phase in a child Python
process with the thread count and GPUs it was granted.  The request and the result travel
as JSON files in a small working directory; the child's output goes to a log file there.
Killing the child's process group aborts the phase.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Final, NamedTuple, TypeVar

import pluggy

from sealagent import PROJECT_NAME, hookspecs
from sealagent.errors import (
    InvalidInputError,
    PhaseCancelledError,
    PhaseFailedError,
    PluginError,
    PluginNotFoundError,
    PluginUnavailableError,
)
from sealagent.phases import BackendInfo, Phase, PhaseRequest, PhaseResult

ENTRY_POINT_GROUP: Final = PROJECT_NAME
"""The entry-point group third-party backends register under."""

REFERENCE_BACKEND: Final = "cpu"
"""The backend every phase falls back to."""

BUILTIN_PLUGINS: Final[Mapping[str, str]] = {"cpu": "sealagent_cpu"}
"""Built-in backends by name and module, loaded even without their entry points."""

DISABLE_AUTOLOAD_ENV: Final = "SEALAGENT_DISABLE_PLUGIN_AUTOLOAD"
"""Set to a non-empty value to skip entry-point plugins (built-ins still load)."""

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

_ResultT = TypeVar("_ResultT", bound=PhaseResult)


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginRecord:
    """One plugin as ``sealagent plugins`` shows it."""

    name: str
    version: str
    source: str
    info: BackendInfo
    phases: tuple[Phase, ...]
    error: str | None = None

    @property
    def available(self) -> bool:
        """True when the plugin loaded and says it can run here."""
        return self.error is None and self.info.available

    @property
    def reason(self) -> str | None:
        """Why the plugin cannot run here, or ``None``."""
        return self.error or self.info.reason

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready ``dict``."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "description": self.info.description,
            "available": self.available,
            "reason": self.reason,
            "phases": [p.label for p in self.phases],
        }


@dataclass
class _Origin:
    """Where a registered plugin came from, and how a child process imports it again."""

    source: str
    version: str | None = None
    module: str | None = None
    import_root: str | None = None


class PluginSet:
    """The loaded backends: a typed facade over a pluggy plugin manager."""

    def __init__(self, manager: pluggy.PluginManager, *, autoload: bool) -> None:
        """Wrap ``manager``, which must have the :mod:`sealagent.hookspecs` added."""
        self._pm = manager
        self.autoload = autoload
        self._origins: dict[str, _Origin] = {}
        self._errors: dict[str, str] = {}
        self._infos: dict[str, BackendInfo] = {}

    @classmethod
    def load(cls, *, autoload: bool | None = None,
             extra: Mapping[str, object] | None = None) -> PluginSet:
        """Load the entry-point plugins, the built-ins, then ``extra`` (name → plugin).

        :param autoload: load entry points; default: unless ``$SEALAGENT_DISABLE_PLUGIN_AUTOLOAD``.
        :param extra: plugins to register directly (a module or an object with hook
            functions), e.g. a backend under test.  An extra plugin replaces a loaded
            plugin of the same name, or the same plugin loaded under another name.
        """
        if autoload is None:
            autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
        manager = pluggy.PluginManager(PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        plugins = cls(manager, autoload=autoload)
        if autoload:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist
                source = f"entry point ({dist.name})" if dist else "entry point"
                plugins._register_lazily(ep.name, ep.load, _Origin(
                    source, dist.version if dist else None, ep.module))
        for name, module in BUILTIN_PLUGINS.items():
            if not manager.has_plugin(name):
                plugins._register_lazily(
                    name, functools.partial(importlib.import_module, module),
                    _Origin("built-in", None, module))
        for name, plugin in (extra or {}).items():
            plugins._forget(name)
            if manager.is_registered(plugin):
                plugins._forget(str(manager.get_name(plugin)))
            plugins._register(name, plugin, _origin_of(plugin))
        return plugins

    def _register_lazily(self, name: str, loader: Callable[[], object],
                         origin: _Origin) -> None:
        """Import a plugin with ``loader()`` and register it, keeping any error aside."""
        if self._pm.has_plugin(name) or name in self._errors:
            return
        try:
            plugin = loader()
        except Exception as exc:
            self._errors[name] = f"failed to load: {type(exc).__name__}: {exc}"
            self._origins[name] = origin
            return
        self._register(name, plugin, origin)

    def _forget(self, name: str) -> None:
        """Unregister plugin ``name`` (loaded or broken), if there is one."""
        if self._pm.has_plugin(name):
            self._pm.unregister(name=name)
        for table in (self._errors, self._infos, self._origins):
            table.pop(name, None)

    def _register(self, name: str, plugin: object, origin: _Origin) -> None:
        """Register ``plugin`` as ``name`` and validate its hook names and arguments."""
        self._errors.pop(name, None)
        self._infos.pop(name, None)
        self._origins[name] = origin
        try:
            self._pm.register(plugin, name=name)
            self._pm.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self._pm.has_plugin(name):
                self._pm.unregister(name=name)
            self._errors[name] = f"invalid plugin: {exc}"

    # -- queries ---------------------------------------------------------------------

    def names(self) -> list[str]:
        """Names of the plugins that loaded, sorted."""
        return sorted(name for name, _ in self._pm.list_name_plugin())

    def errors(self) -> dict[str, str]:
        """Plugins that failed to load or validate, with the error."""
        return dict(self._errors)

    def _hookimpl(self, name: str, hook_name: str) -> pluggy.HookImpl | None:
        """The hook implementation of plugin ``name`` for ``hook_name``, if any."""
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin_name == name:
                return impl
        return None

    def implements(self, name: str, phase: Phase) -> bool:
        """True when plugin ``name`` has a hook for ``phase``."""
        return self._hookimpl(name, phase.hook_name) is not None

    def phases(self, name: str) -> tuple[Phase, ...]:
        """The phases plugin ``name`` implements, in pipeline order."""
        return tuple(p for p in Phase if self.implements(name, p))

    def info(self, name: str) -> BackendInfo:
        """What plugin ``name`` says about itself (asked once, then remembered).

        :raises PluginNotFoundError: no plugin of that name loaded.
        """
        self._require(name)
        if name not in self._infos:
            self._infos[name] = self._ask_info(name)
        return self._infos[name]

    def _ask_info(self, name: str) -> BackendInfo:
        """Call the plugin's ``sealagent_backend_info``; a failure makes it unavailable."""
        version = self._origins[name].version or "unknown"
        impl = self._hookimpl(name, "sealagent_backend_info")
        if impl is None:
            return BackendInfo(name=name, description="", version=version)
        try:
            info = impl.function()
        except Exception as exc:
            return BackendInfo(name=name, description="", version=version, available=False,
                               reason=f"backend_info failed: {type(exc).__name__}: {exc}")
        if not isinstance(info, BackendInfo):
            return BackendInfo(name=name, description="", version=version, available=False,
                               reason=f"backend_info returned {type(info).__name__}, "
                                      "not BackendInfo")
        return info

    def records(self) -> list[PluginRecord]:
        """Every plugin, loaded or broken, sorted by name."""
        out = []
        for name in sorted({*self.names(), *self._errors}):
            origin = self._origins[name]
            error = self._errors.get(name)
            if error is None:
                info = self.info(name)
                out.append(PluginRecord(name, origin.version or info.version, origin.source,
                                        info, self.phases(name)))
            else:
                info = BackendInfo(name=name, description="", version="unknown",
                                   available=False, reason=error)
                out.append(PluginRecord(name, origin.version or "unknown", origin.source,
                                        info, (), error))
        return out

    def _require(self, name: str) -> None:
        """Raise :class:`PluginNotFoundError` unless plugin ``name`` loaded."""
        if not self._pm.has_plugin(name):
            raise PluginNotFoundError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        """The error text for an unknown plugin name, listing the known ones."""
        if name in self._errors:
            return f"plugin {name!r} {self._errors[name]}"
        return (f"unknown plugin {name!r}; installed: {', '.join(self.names()) or 'none'}")

    # -- selection ---------------------------------------------------------------------

    def select(self, names: Sequence[str] = ()) -> Selection:
        """Choose a backend chain per phase: ``names`` in order, then ``cpu``.

        A chosen plugin that is unavailable (or failed to load) is skipped and listed in
        :attr:`Selection.skipped`; a phase it would run falls back to the next one.

        :raises PluginNotFoundError: a name is not an installed plugin.
        """
        unknown = [n for n in names if n not in self.names() and n not in self._errors]
        if unknown:
            raise PluginNotFoundError(self._unknown_message(unknown[0]))
        order = list(dict.fromkeys([*names, REFERENCE_BACKEND]))
        skipped: dict[str, str] = {}
        for name in order:
            if name in self._errors:
                skipped[name] = self._errors[name]
            elif not self._pm.has_plugin(name):
                skipped[name] = "not installed"
            elif not self.info(name).available:
                skipped[name] = self.info(name).reason or "unavailable"
        chains = {phase: tuple(n for n in order if n not in skipped
                               and self.implements(n, phase)) for phase in Phase}
        return Selection(self, tuple(names), chains, skipped)

    # -- running -----------------------------------------------------------------------

    def call(self, name: str, phase: Phase, request: PhaseRequest) -> object:
        """Call plugin ``name``'s hook for ``phase``; returns what the hook returned.

        No checks and no error translation: :func:`run_phase` does both.
        """
        impl = self._hookimpl(name, phase.hook_name)
        if impl is None:
            raise PluginNotFoundError(f"plugin {name!r} does not implement {phase.label}")
        result: object = impl.function(request=request)
        return result

    def child_modules(self, names: Sequence[str]) -> dict[str, tuple[str, str]]:
        """For plugins registered directly: name → (module, import root) for a child.

        Entry-point and built-in plugins load again by themselves in a child process.

        :raises PluginError: a plugin was registered as an object, not a module.
        """
        out = {}
        for name in names:
            origin = self._origins[name]
            if origin.source != "registered":
                continue
            if origin.module is None or origin.import_root is None:
                raise PluginError(f"plugin {name!r} was registered as an object; only a "
                                  "module plugin can run in a child process")
            out[name] = (origin.module, origin.import_root)
        return out


def _origin_of(plugin: object) -> _Origin:
    """Describe a directly registered plugin; modules can be imported again by a child."""
    if (not isinstance(plugin, ModuleType) or not getattr(plugin, "__file__", None)
            or plugin.__name__ == "__main__"):
        return _Origin("registered")
    path = Path(str(plugin.__file__)).resolve()
    depth = plugin.__name__.count(".") + (1 if path.name == "__init__.py" else 0)
    return _Origin("registered", getattr(plugin, "__version__", None), plugin.__name__,
                   str(path.parents[depth]))


@functools.cache
def default_plugins() -> PluginSet:
    """The plugins of this process, loaded on first use."""
    return PluginSet.load()


# --------------------------------------------------------------------------------------
# Selection and running in-process
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The backends chosen for each phase, in the order they are tried."""

    plugins: PluginSet
    requested: tuple[str, ...]
    chains: Mapping[Phase, tuple[str, ...]]
    skipped: Mapping[str, str] = field(default_factory=dict)
    """Chosen plugins that cannot run here, with the reason."""

    def candidates(self, phase: Phase) -> tuple[str, ...]:
        """The backends that may run ``phase``, first choice first.

        :raises PluginNotFoundError: no installed backend implements the phase.
        :raises PluginUnavailableError: the only implementations cannot run here.
        """
        chain = self.chains[phase]
        if chain:
            return chain
        blocked = [f"{n}: {r}" for n, r in self.skipped.items()
                   if n in self.plugins.names() and self.plugins.implements(n, phase)]
        if blocked:
            raise PluginUnavailableError(
                f"no available backend implements {phase.label} ({'; '.join(blocked)})")
        raise PluginNotFoundError(f"no backend implements {phase.label}")

    def backend_for(self, phase: Phase) -> str:
        """The first-choice backend of ``phase`` (see :meth:`candidates`)."""
        return self.candidates(phase)[0]

    def to_json(self) -> dict[str, Any]:
        """Requested names, the first choice per phase (``null`` if none), skipped ones."""
        return {
            "requested": list(self.requested),
            "phases": {p.label: (self.chains[p][0] if self.chains[p] else None)
                       for p in Phase},
            "skipped": dict(self.skipped),
        }


def select_backends(names: Sequence[str] = (), plugins: PluginSet | None = None) -> Selection:
    """Choose backends for every phase from the plugin names the operator gave.

    :raises PluginNotFoundError: a name is not an installed plugin (the message lists them).
    """
    return (plugins or default_plugins()).select(names)


class PhaseRun(NamedTuple):
    """A phase's result and the backend that produced it."""

    result: PhaseResult
    backend: str

    def result_as(self, expected: type[_ResultT]) -> _ResultT:
        """The result typed as ``expected`` (the phase's result class)."""
        if not isinstance(self.result, expected):
            raise PhaseFailedError(f"backend {self.backend!r} returned "
                                   f"{type(self.result).__name__}, not {expected.__name__}")
        return self.result


def run_phase(phase: Phase | str, request: PhaseRequest, selection: Selection) -> PhaseRun:
    """Run ``phase`` in this process on the first selected backend that accepts it.

    :raises PluginNotFoundError: no backend implements the phase, or all declined it.
    :raises PhaseFailedError: the backend raised (the message names it and the error;
        the original exception is the ``__cause__``) or returned the wrong type.
    """
    phase = Phase.parse(phase)
    if not isinstance(request, phase.request_type):
        raise InvalidInputError(f"{phase.label} needs a {phase.request_type.__name__}, "
                                f"got {type(request).__name__}")
    chain = selection.candidates(phase)
    for name in chain:
        try:
            result = selection.plugins.call(name, phase, request)
        except PhaseCancelledError:
            raise
        except Exception as exc:
            raise PhaseFailedError(f"{phase.label} failed on backend {name!r}: "
                                   f"{type(exc).__name__}: {exc}") from exc
        if result is None:
            continue
        if not isinstance(result, phase.result_type):
            raise PhaseFailedError(f"{phase.label}: backend {name!r} returned "
                                   f"{type(result).__name__}, not "
                                   f"{phase.result_type.__name__}")
        return PhaseRun(result, name)
    raise PluginNotFoundError(f"every backend declined {phase.label} ({', '.join(chain)})")


# --------------------------------------------------------------------------------------
# Running in a child process
# --------------------------------------------------------------------------------------

_JOB_FILE: Final = "job.json"
_RESULT_FILE: Final = "result.json"
_LOG_FILE: Final = "child.log"
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
            "autoload": selection.plugins.autoload,
            "modules": selection.plugins.child_modules(chain),
        })
        owns = workdir is None
        path = Path(workdir or tempfile.mkdtemp(prefix="sealagent-phase-"))
        path.mkdir(parents=True, exist_ok=True)
        (path / _JOB_FILE).write_text(job)
        (path / _RESULT_FILE).unlink(missing_ok=True)
        argv = [sys.executable, "-c",
                "import sys; from sealagent.plugins import child_main; "
                "sys.exit(child_main(sys.argv[1:]))", str(path)]
        return cls(phase, path, argv, environment, owns)

    @property
    def log_path(self) -> Path:
        """The file for the child's stdout and stderr."""
        return self.workdir / _LOG_FILE

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
            answer = json.loads((self.workdir / _RESULT_FILE).read_text())
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


def child_main(argv: Sequence[str]) -> int:
    """Entry point of the child process: run the job in ``argv[0]`` and write the answer."""
    workdir = Path(argv[0])
    try:
        job = json.loads((workdir / _JOB_FILE).read_text())
        for _module, root in job["modules"].values():
            if root not in sys.path:
                sys.path.insert(0, root)
        extra = {name: importlib.import_module(module)
                 for name, (module, _) in job["modules"].items()}
        plugins = PluginSet.load(autoload=bool(job["autoload"]), extra=extra)
        phase = Phase.parse(job["phase"])
        request = phase.request_type.from_json(job["request"])
        selection = plugins.select(job["backends"])
        wall0, cpu0 = time.perf_counter(), time.process_time()
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
    tmp = workdir / (_RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(answer))
    tmp.replace(workdir / _RESULT_FILE)
    return status


def peak_rss_bytes(*, children: bool = False) -> int:
    """This process' peak resident set size so far, in bytes (``getrusage``).

    :param children: also consider its finished children (the largest of them).
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return peak * (1 if sys.platform == "darwin" else 1024)
