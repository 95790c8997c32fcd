"""Lazy re-exports: a package names its public API without importing it up front.

A package that re-exports names from its submodules (``sealagent.proofs`` re-exports the
whole proofs core, which needs numpy) would make every importer pay for every submodule.
With :func:`lazy_exports` the package lists where each name lives and imports that
submodule the first time the name is used (PEP 562 module ``__getattr__``)::

    __getattr__, __dir__ = lazy_exports(__name__, {".seal": ("seal_pre_commit_phase1",)})

Type checkers see the names through an ``if TYPE_CHECKING:`` import block beside it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, Sequence[str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    :param package: the package's ``__name__``.
    :param homes: module → the names it provides; a module name starting with ``.`` is
        relative to the package.  A name is looked up in its module on first use and
        then cached in the package.
    """
    home_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        """Import the module that provides ``name`` and return the value."""
        module = home_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        """The package's own names and the lazy ones."""
        return sorted({*vars(sys.modules[package]), *home_of})

    return __getattr__, __dir__
