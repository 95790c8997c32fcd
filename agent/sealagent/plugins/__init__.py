"""Backends: loading them, choosing one per phase, running a phase in- or out-of-process.

* :mod:`~sealagent.plugins.loading` – entry points, built-ins, validation
  (:class:`PluginSet`), wrapper plugins;
* :mod:`~sealagent.plugins.selection` – the backend chain of each phase (:class:`Selection`);
* :mod:`~sealagent.plugins.running` – a phase in this process (:func:`run_phase`);
* :mod:`~sealagent.plugins.jobs` – a phase in a child process (:class:`PhaseJob`,
  :func:`run_phase_in_subprocess`), and :mod:`~sealagent.plugins.child`, the child's
  side.

Every name below is importable from :mod:`sealagent.plugins`; each submodule is imported
on first use, so a phase's child process loads only the parts it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sealagent.lazy import lazy_exports

if TYPE_CHECKING:
    from sealagent.plugins.child import child_main, peak_rss_bytes
    from sealagent.plugins.jobs import (
        THREAD_ENV_VARS,
        PhaseJob,
        PhaseOutcome,
        PhaseProcess,
        phase_environment,
        run_phase_in_subprocess,
    )
    from sealagent.plugins.loading import (
        BUILTIN_PLUGINS,
        DISABLE_AUTOLOAD_ENV,
        ENTRY_POINT_GROUP,
        REFERENCE_BACKEND,
        PluginRecord,
        PluginSet,
        PluginTarget,
        default_plugins,
        select_backends,
    )
    from sealagent.plugins.running import PhaseRun, run_phase
    from sealagent.plugins.selection import Selection

__all__ = [
    "BUILTIN_PLUGINS",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "REFERENCE_BACKEND",
    "THREAD_ENV_VARS",
    "PhaseJob",
    "PhaseOutcome",
    "PhaseProcess",
    "PhaseRun",
    "PluginRecord",
    "PluginSet",
    "PluginTarget",
    "Selection",
    "child_main",
    "default_plugins",
    "peak_rss_bytes",
    "phase_environment",
    "run_phase",
    "run_phase_in_subprocess",
    "select_backends",
]

_HOMES: Final[dict[str, tuple[str, ...]]] = {
    ".child": ("child_main", "peak_rss_bytes"),
    ".jobs": ("THREAD_ENV_VARS", "PhaseJob", "PhaseOutcome", "PhaseProcess",
              "phase_environment", "run_phase_in_subprocess"),
    ".loading": ("BUILTIN_PLUGINS", "DISABLE_AUTOLOAD_ENV", "ENTRY_POINT_GROUP",
                 "REFERENCE_BACKEND", "PluginRecord", "PluginSet", "PluginTarget",
                 "default_plugins", "select_backends"),
    ".running": ("PhaseRun", "run_phase"),
    ".selection": ("Selection",),
}
"""Where each public name lives: the submodule is imported on first use."""

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
