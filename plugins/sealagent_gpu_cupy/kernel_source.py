"""Where the kernel source lives and how one arity's build is configured.

``kernels/poseidon.cu`` (with ``kernels/fr.cuh``) is compiled with NVRTC for the GPU and
with the host C compiler for the tests; both builds take the same ``-D`` macros.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from sealagent_gpu_cupy.schedule import compile_defines

KERNEL_DIR: Final = Path(__file__).resolve().parent / "kernels"
"""The directory of the ``.cu`` / ``.cuh`` files (also the include path)."""

MAIN_SOURCE: Final = KERNEL_DIR / "poseidon.cu"
"""The translation unit: Poseidon, the PC2 kernels and the field test kernel."""

KERNEL_NAMES: Final = ("poseidon_hash", "encode_hash", "fr_batch")
"""The entry points of :data:`MAIN_SOURCE`."""


def source_text() -> str:
    """The main source, as NVRTC receives it (``fr.cuh`` is found on the include path)."""
    return MAIN_SOURCE.read_text()


def source_digest() -> str:
    """A short hash of every kernel file, to key caches of compiled builds."""
    digest = hashlib.sha256()
    for path in sorted(KERNEL_DIR.glob("*.cu*")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def define_options(arity: int) -> list[str]:
    """``-DNAME=value`` options of the build for ``arity``."""
    return [f"-D{name}={value}" for name, value in compile_defines(arity).items()]


def nvrtc_options(arity: int) -> tuple[str, ...]:
    """NVRTC options of the build for ``arity`` (the architecture is added by the caller)."""
    return ("--std=c++14", f"-I{KERNEL_DIR}", *define_options(arity))
