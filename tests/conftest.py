"""Shared test fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealagent_multicore.environment import kernel_cache_dir

VECTORS_FILE = Path(__file__).resolve().parent / "kat" / "vectors.json"


def load_vectors() -> dict[str, dict[str, Any]]:
    """The known-answer vectors, by name."""
    data = json.loads(VECTORS_FILE.read_text())
    return {v["name"]: v for v in data["vectors"]}


@pytest.fixture(scope="session")
def vectors() -> dict[str, dict[str, Any]]:
    """All known-answer vectors, by name."""
    return load_vectors()


@pytest.fixture(autouse=True)
def _parent_cache_dir(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep parent cache files of a test session in one temporary directory."""
    cache = tmp_path_factory.getbasetemp() / "filecoin-parents"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("FIL_PROOFS_PARENT_CACHE", str(cache))


@pytest.fixture(scope="session", autouse=True)
def _kernel_cache(pytestconfig: pytest.Config) -> Iterator[Path]:
    """Compiled kernels go to pytest's cache directory, so they compile once, not per run.

    Without pytest's cache (``-p no:cacheprovider``) the user's kernel cache is used, as the
    ``multicore`` backend would use it anyway.
    """
    cache = getattr(pytestconfig, "cache", None)
    if cache is None:
        yield kernel_cache_dir()
        return
    path = Path(cache.mkdir("sealagent-kernels"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEALAGENT_KERNEL_CACHE", str(path))
        yield path
