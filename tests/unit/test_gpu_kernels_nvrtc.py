"""The CUDA source compiles with NVRTC (no GPU needed), so a syntax error never lands.

Needs cupy with its NVRTC library (``pip install 'sealagent[gpu-cuda12]'``); skipped
otherwise.  The default run compiles the tree arity; the other arities are ``slow``.
"""

from __future__ import annotations

import pytest

from sealagent.errors import PluginError, PluginUnavailableError
from sealagent_gpu_cupy import device
from sealagent_gpu_cupy.device import compile_ptx
from sealagent_gpu_cupy.kernel_source import KERNEL_NAMES


def _ptx(arity: int) -> str:
    try:
        return compile_ptx(arity)
    except PluginUnavailableError as exc:
        pytest.skip(f"NVRTC is not available: {exc}")


def test_tree_arity_compiles_with_every_kernel() -> None:
    ptx = _ptx(8)
    for name in KERNEL_NAMES:
        assert f".entry {name}(" in ptx


@pytest.mark.slow
@pytest.mark.parametrize("arity", [2, 4, 11])
def test_other_arities_compile(arity: int) -> None:
    assert ".entry poseidon_hash(" in _ptx(arity)


def test_a_compile_error_is_reported_with_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "source_text", lambda: "this is not CUDA;")
    with pytest.raises(PluginError) as caught:
        compile_ptx(2)
    if isinstance(caught.value, PluginUnavailableError):
        pytest.skip(f"NVRTC is not available: {caught.value}")
    assert "NVRTC rejected" in str(caught.value)
    assert "error" in str(caught.value)
