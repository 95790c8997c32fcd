"""Selection: the backends that may run each phase, first choice first.

For each phase: the operator's chosen plugins in order, those that implement the phase
and are available, then ``cpu`` (:meth:`PluginSet.select
<sealagent.plugins.loading.PluginSet.select>`).  The first one that does not decline runs
it (:func:`~sealagent.plugins.running.run_phase`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sealagent.errors import PluginNotFoundError, PluginUnavailableError
from sealagent.phases import Phase

if TYPE_CHECKING:
    from sealagent.plugins.loading import PluginSet


@dataclass(frozen=True)
class Selection:
    """The backends chosen for each phase, in the order they are tried."""

    plugins: PluginSet
    requested: tuple[str, ...]
    chains: Mapping[Phase, tuple[str, ...]]
    skipped: Mapping[str, str] = field(default_factory=dict)
    """Chosen plugins that cannot run here, with the reason."""

    @property
    def runnable(self) -> tuple[str, ...]:
        """The requested plugins that can run here, in the operator's order."""
        return tuple(name for name in self.requested if name not in self.skipped)

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

    @classmethod
    def of_chain(cls, plugins: PluginSet, phase: Phase, chain: Sequence[str]) -> Selection:
        """A selection that runs ``phase`` on ``chain`` as given, asking no backend about
        itself (a phase's child process runs the chain its parent chose)."""
        return cls(plugins, tuple(chain),
                   {p: (tuple(chain) if p is phase else ()) for p in Phase})

    def to_json(self) -> dict[str, Any]:
        """Requested names, the first choice per phase (``null`` if none), skipped ones."""
        return {
            "requested": list(self.requested),
            "phases": {p.label: (self.chains[p][0] if self.chains[p] else None)
                       for p in Phase},
            "skipped": dict(self.skipped),
        }
