"""Running a phase in this process on the first selected backend that accepts it."""

from __future__ import annotations

from typing import NamedTuple, TypeVar

from sealagent.errors import (
    InvalidInputError,
    PhaseCancelledError,
    PhaseFailedError,
    PluginNotFoundError,
)
from sealagent.phases import Phase, PhaseRequest, PhaseResult
from sealagent.plugins.selection import Selection

_ResultT = TypeVar("_ResultT", bound=PhaseResult)


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
