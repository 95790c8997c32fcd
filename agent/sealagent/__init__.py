"""sealagent: a Filecoin sealing cluster in Python.

Plugin authors need only::

    from sealagent import hookimpl

The hook contract lives in :mod:`sealagent.hookspecs`; the PoRep math in
:mod:`sealagent.proofs`; every error derives from :class:`sealagent.errors.SealAgentError`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pluggy

from sealagent.errors import SealAgentError

try:
    __version__ = version("sealagent")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

PROJECT_NAME = "sealagent"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for plugin hook implementations: ``@hookimpl def sealagent_...``."""

__all__ = ["PROJECT_NAME", "SealAgentError", "__version__", "hookimpl"]
