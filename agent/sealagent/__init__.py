"""sealagent: a Filecoin sealing cluster in Python.

Plugin authors need only::

    from sealagent import hookimpl

The hook contract lives in :mod:`sealagent.hookspecs`; the PoRep math in
:mod:`sealagent.proofs`; every error derives from :class:`sealagent.errors.SealAgentError`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pluggy

from sealagent.errors import SealAgentError

if TYPE_CHECKING:
    __version__: str

PROJECT_NAME = "sealagent"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for plugin hook implementations: ``@hookimpl def sealagent_...``."""

__all__ = ["PROJECT_NAME", "SealAgentError", "__version__", "hookimpl"]


@functools.cache
def _installed_version() -> str:
    """The installed distribution's version (``0.0.0`` from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version  # costly: see __getattr__

    try:
        return version(PROJECT_NAME)
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def __getattr__(name: str) -> str:
    """``__version__``, read from the package metadata on first use.

    Reading it costs more than the rest of this package together, and a phase's child
    process never needs it.
    """
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
