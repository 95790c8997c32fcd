"""Loading backends: entry points, built-ins, plugins registered directly; validation.

Every entry point of group ``sealagent`` is imported and registered under its entry-point
name; the built-in backends are also known by module name (:data:`BUILTIN_PLUGINS`), so a
stale install still has ``cpu``.  A plugin that fails to import or validate is kept aside
with its error instead of breaking the process.  ``SEALAGENT_DISABLE_PLUGIN_AUTOLOAD=1``
skips the entry points.

A plugin whose hooks are all wrappers (``@hookimpl(wrapper=True)``) runs no phase: it
observes every phase run (see :meth:`PluginSet.call`).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

import pluggy

from sealagent import PROJECT_NAME, hookspecs
from sealagent.errors import PluginError, PluginNotFoundError, PluginUnavailableError
from sealagent.phases import BackendInfo, Phase, PhaseRequest
from sealagent.plugins.selection import Selection

if TYPE_CHECKING:
    from sealagent.proofs.parent_cache import ParentsBuilder

ENTRY_POINT_GROUP: Final = PROJECT_NAME
"""The entry-point group third-party backends register under."""

REFERENCE_BACKEND: Final = "cpu"
"""The backend every phase falls back to."""

BUILTIN_PLUGINS: Final[Mapping[str, str]] = {"cpu": "sealagent_cpu"}
"""Built-in backends by name and module, loaded even without their entry points."""

DISABLE_AUTOLOAD_ENV: Final = "SEALAGENT_DISABLE_PLUGIN_AUTOLOAD"
"""Set to a non-empty value to skip entry-point plugins (built-ins still load)."""


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
            "kernel_cache": self.info.kernel_cache,
        }


class PluginTarget(NamedTuple):
    """How to import a plugin again (in a phase's child process)."""

    spec: str
    """``module`` or ``module:attribute``, as an entry point's value (extras ignored)."""
    root: str | None = None
    """A directory to put on ``sys.path`` first (a module registered from a file)."""

    def load(self) -> object:
        """Import the plugin."""
        if self.root is not None and self.root not in sys.path:
            sys.path.insert(0, self.root)
        reference = self.spec.partition("[")[0]  # an entry point's extras do not matter here
        module, _, attribute = (part.strip() for part in reference.partition(":"))
        plugin: object = importlib.import_module(module)
        for part in filter(None, attribute.split(".")):
            plugin = getattr(plugin, part)
        return plugin


@dataclass
class _Origin:
    """Where a registered plugin came from, and how a child process imports it again."""

    source: str
    version: str | None = None
    target: PluginTarget | None = None


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
        plugins = cls(_new_manager(), autoload=autoload)
        manager = plugins._pm
        if autoload:
            from importlib.metadata import entry_points  # costly: only when autoloading

            for ep in entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist
                source = f"entry point ({dist.name})" if dist else "entry point"
                plugins._register_lazily(ep.name, ep.load, _Origin(
                    source, dist.version if dist else None, PluginTarget(ep.value)))
        for name, module in BUILTIN_PLUGINS.items():
            if not manager.has_plugin(name):
                target = PluginTarget(module)
                plugins._register_lazily(name, target.load, _Origin("built-in", None, target))
        for name, plugin in (extra or {}).items():
            plugins._forget(name)
            if manager.is_registered(plugin):
                plugins._forget(str(manager.get_name(plugin)))
            plugins._register(name, plugin, _origin_of(plugin))
        return plugins

    @classmethod
    def load_only(cls, targets: Mapping[str, PluginTarget]) -> PluginSet:
        """Import and register exactly ``targets`` (name → where it is): no entry points,
        no built-ins.  A phase's child process loads its plugins this way, which spares
        it reading every installed package's metadata.
        """
        plugins = cls(_new_manager(), autoload=False)
        for name, target in targets.items():
            plugins._register_lazily(name, target.load, _Origin("registered", None, target))
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

    def _hookimpls(self, hook_name: str) -> list[pluggy.HookImpl]:
        """Every implementation of ``hook_name``, wrappers included."""
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook_name)
        return caller.get_hookimpls()

    def _hookimpl(self, name: str, hook_name: str) -> pluggy.HookImpl | None:
        """Plugin ``name``'s implementation of ``hook_name`` (not a wrapper), if any."""
        for impl in self._hookimpls(hook_name):
            if impl.plugin_name == name and not _is_wrapper(impl):
                return impl
        return None

    def implements(self, name: str, phase: Phase) -> bool:
        """True when plugin ``name`` runs ``phase`` (a wrapper only observes it)."""
        return self._hookimpl(name, phase.hook_name) is not None

    def wrappers(self, phase: Phase) -> list[str]:
        """The plugins that wrap ``phase``'s hook (``wrapper=True`` or ``hookwrapper=True``):
        they see every run of the phase, whichever backend runs it."""
        return [impl.plugin_name for impl in self._hookimpls(phase.hook_name)
                if _is_wrapper(impl)]

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

    def warm(self, name: str, progress: Callable[[str], None]) -> bool:
        """Run plugin ``name``'s ``sealagent_warm`` hook; False when it has none.

        :raises PluginNotFoundError: no plugin of that name loaded.
        :raises PluginUnavailableError: the plugin cannot run here.
        :raises PluginError: warming failed (the message names the plugin and the error).
        """
        self._require(name)
        info = self.info(name)
        if not info.available:
            raise PluginUnavailableError(f"plugin {name!r} cannot run here: {info.reason}")
        impl = self._hookimpl(name, "sealagent_warm")
        if impl is None:
            return False
        try:
            impl.function(progress=progress)
        except Exception as exc:
            raise PluginError(f"warming plugin {name!r} failed: "
                              f"{type(exc).__name__}: {exc}") from exc
        return True

    def parents_builder(self, names: Sequence[str]) -> tuple[str, ParentsBuilder] | None:
        """The first of plugins ``names`` whose ``sealagent_parents_builder`` gives one.

        Unavailable plugins are passed over.  Returns the plugin's name and its builder,
        or ``None`` (the reference builder then builds).

        :raises PluginError: a hook failed (the message names the plugin and the error).
        """
        for name in names:
            impl = self._hookimpl(name, "sealagent_parents_builder")
            if impl is None or not self.info(name).available:
                continue
            try:
                builder = impl.function()
            except Exception as exc:
                raise PluginError(f"plugin {name!r} could not give its parents builder: "
                                  f"{type(exc).__name__}: {exc}") from exc
            if builder is None:
                continue
            if not callable(builder):
                raise PluginError(f"plugin {name!r} gave a parents builder that is not "
                                  f"callable: {type(builder).__name__}")
            return name, cast("ParentsBuilder", builder)
        return None

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

        The call goes through pluggy with every other backend left out, so the wrappers
        of the hook (:meth:`wrappers`: tracing, timing) run around it.  No checks and
        no error translation: :func:`~sealagent.plugins.running.run_phase` does both.
        """
        if self._hookimpl(name, phase.hook_name) is None:
            raise PluginNotFoundError(f"plugin {name!r} does not implement {phase.label}")
        others = {impl.plugin for impl in self._hookimpls(phase.hook_name)
                  if impl.plugin_name != name and not _is_wrapper(impl)}
        hook = self._pm.subset_hook_caller(phase.hook_name, remove_plugins=others)
        result: object = hook(request=request)
        return result

    def child_targets(self, names: Sequence[str], phase: Phase) -> dict[str, PluginTarget]:
        """What a child process running ``phase`` on backends ``names`` must import.

        The backends, then the phase's wrappers (:meth:`wrappers`) that can be imported
        again; a wrapper registered as an object observes in-process runs only.

        :raises PluginError: a backend was registered as an object, not a module.
        """
        out = {}
        for name in names:
            target = self._origins[name].target
            if target is None:
                raise PluginError(f"plugin {name!r} was registered as an object; only a "
                                  "module plugin can run in a child process")
            out[name] = target
        for name in self.wrappers(phase):
            target = self._origins[name].target
            if target is not None:
                out.setdefault(name, target)
        return out


def _new_manager() -> pluggy.PluginManager:
    """A pluggy plugin manager that knows the hooks of :mod:`sealagent.hookspecs`."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


def _is_wrapper(impl: pluggy.HookImpl) -> bool:
    """True for an implementation that wraps the hook instead of answering it."""
    return bool(impl.wrapper or impl.hookwrapper)


def _origin_of(plugin: object) -> _Origin:
    """Describe a directly registered plugin; modules can be imported again by a child."""
    if (not isinstance(plugin, ModuleType) or not getattr(plugin, "__file__", None)
            or plugin.__name__ == "__main__"):
        return _Origin("registered")
    path = Path(str(plugin.__file__)).resolve()
    depth = plugin.__name__.count(".") + (1 if path.name == "__init__.py" else 0)
    return _Origin("registered", getattr(plugin, "__version__", None),
                   PluginTarget(plugin.__name__, str(path.parents[depth])))


@functools.cache
def default_plugins() -> PluginSet:
    """The plugins of this process, loaded on first use."""
    return PluginSet.load()




def select_backends(names: Sequence[str] = (), plugins: PluginSet | None = None) -> Selection:
    """Choose backends for every phase from the plugin names the operator gave.

    :raises PluginNotFoundError: a name is not an installed plugin (the message lists them).
    """
    return (plugins or default_plugins()).select(names)
