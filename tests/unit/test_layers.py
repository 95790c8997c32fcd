"""What the layers promise at run time: light imports where they matter.

The import rules themselves are import-linter contracts (``pyproject.toml``), checked by
``lint-imports`` in ``.ci/run``.
"""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import pytest

import sealagent
from sealagent import plugins, proofs


def _loaded_after(*modules: str) -> set[str]:
    """The modules a fresh interpreter holds after importing ``modules``."""
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "print('\\n'.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return set(out.split())


@pytest.mark.parametrize("modules", [
    ("sealagent.sched.scheduler", "sealagent.hookspecs"),
    ("sealagent.manager.fsm",),
    ("sealagent.plugins.child", "sealagent_cpu"),
])
def test_contract_scheduler_and_phase_child_load_no_numpy(modules: tuple[str, ...]) -> None:
    loaded = _loaded_after(*modules)
    assert set(modules) <= loaded
    assert "numpy" not in loaded
    assert "sealagent.proofs.seal" not in loaded


def test_phase_child_start_up_reads_no_package_metadata() -> None:
    loaded = _loaded_after("sealagent.plugins.child", "sealagent_cpu")
    assert "importlib.metadata" not in loaded
    assert "trio" not in loaded


@pytest.mark.parametrize("package", [proofs, plugins], ids=lambda m: m.__name__)
def test_lazy_names_are_the_public_api(package: ModuleType) -> None:
    homes = package._HOMES
    assert sorted(name for names in homes.values() for name in names) == sorted(package.__all__)
    assert set(dir(package)) >= set(package.__all__)
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = package.no_such_name


def test_version_is_read_on_first_use() -> None:
    assert sealagent.__version__.count(".") >= 2
    with pytest.raises(AttributeError, match="nothing"):
        _ = sealagent.nothing
