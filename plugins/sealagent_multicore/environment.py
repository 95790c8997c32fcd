"""What the ``multicore`` backend needs from the host, found without importing numba.

* **libcrypto** (OpenSSL ≥ 1.1, whose ``SHA256_Init/Update/Final`` the compiled labeler
  calls): ``$SEALAGENT_LIBCRYPTO`` if set, else the system's (``ctypes.util.find_library``,
  then the usual Debian/Ubuntu and RHEL names).
* **numba**, the optional extra ``sealagent[multicore]``.
* **A kernel cache**: compiled kernels are written once and loaded by every later process.
  ``$SEALAGENT_KERNEL_CACHE``, else ``$NUMBA_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/sealagent/kernels`` (``~/.cache/sealagent/kernels``).
* **Threads**: the phase's grant, ``$SEALAGENT_THREADS`` (set by the agent for each phase
  child), else the CPUs this process may run on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from typing import Final

from sealagent.errors import ConfigError, PluginUnavailableError

LIBCRYPTO_ENV: Final = "SEALAGENT_LIBCRYPTO"
"""Path (or soname) of the libcrypto to use instead of the system's."""

KERNEL_CACHE_ENV: Final = "SEALAGENT_KERNEL_CACHE"
"""Directory of the compiled-kernel cache."""

THREADS_ENV: Final = "SEALAGENT_THREADS"
"""The thread count granted to a phase (set by the agent in each phase's child process)."""

COMPILED_MODULES: Final = ("field.py", "field_ifma.py", "labeler.py", "sha256.py",
                          "parents.py", "poseidon.py", "ntt.py")
"""The package's modules holding numba-compiled code (they key the kernel cache)."""

_LIBCRYPTO_NAMES: Final = ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so")
_SHA256_SYMBOLS: Final = ("SHA256_Init", "SHA256_Update", "SHA256_Final")


def _candidates() -> list[str]:
    """Library names to try, the operator's choice first."""
    chosen = os.environ.get(LIBCRYPTO_ENV)
    if chosen:
        return [chosen]
    found = ctypes.util.find_library("crypto")
    return [*([found] if found else []), *_LIBCRYPTO_NAMES]


@functools.cache
def find_libcrypto() -> str:
    """Load libcrypto into the process (symbols global) and return the name that loaded.

    :raises PluginUnavailableError: no libcrypto with ``SHA256_Init/Update/Final`` loads.
    """
    problems = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            problems.append(f"{name}: {exc}")
            continue
        missing = [s for s in _SHA256_SYMBOLS if not hasattr(lib, s)]
        if missing:
            problems.append(f"{name} lacks {', '.join(missing)}")
            continue
        return name
    hint = (f"install OpenSSL's libcrypto (Debian/Ubuntu: libssl3) or set ${LIBCRYPTO_ENV}; "
            + "; ".join(problems))
    raise PluginUnavailableError(f"no usable libcrypto: {hint}")


def missing_requirement() -> str | None:
    """Why the backend cannot run here (numba or libcrypto missing), or ``None``."""
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed (pip install 'sealagent[multicore]')"
    try:
        find_libcrypto()
    except PluginUnavailableError as exc:
        return str(exc)
    return None


def kernel_cache_dir() -> Path:
    """Where compiled kernels are cached (not created here)."""
    for var in (KERNEL_CACHE_ENV, "NUMBA_CACHE_DIR"):
        value = os.environ.get(var)
        if value:
            path = Path(value).expanduser()
            # prepare_kernel_cache points $NUMBA_CACHE_DIR at this version's subdirectory;
            # the cache is still the directory above it.
            return path.parent if path.name == _kernels_fingerprint() else path
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sealagent" / "kernels"


@functools.cache
def _kernels_fingerprint() -> str:
    """A digest of the compiled modules' sources and numba's version.

    numba checks only the file of a cached function, not the modules it inlines; keying the
    cache directory by all of them makes a stale kernel impossible after an upgrade.
    """
    digest = hashlib.sha256()
    for name in COMPILED_MODULES:
        source = Path(__file__).with_name(name)
        digest.update(name.encode() + b"\0" + source.read_bytes())
    numba_spec = importlib.util.find_spec("numba")
    version = importlib.metadata.version("numba") if numba_spec else "none"
    digest.update(version.encode())
    return digest.hexdigest()[:16]


def prepare_kernel_cache() -> Path:
    """Create this version's directory in the kernel cache and point numba at it.

    Called before the compiled modules are imported; returns the directory.

    :raises ConfigError: the directory cannot be created or written.
    """
    path = kernel_cache_dir() / _kernels_fingerprint()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the kernel cache {path}: {exc}; "
                          f"set ${KERNEL_CACHE_ENV} to a writable directory") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"the kernel cache {path} is not writable; "
                          f"set ${KERNEL_CACHE_ENV} to a writable directory")
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:  # numba already imported: make it read the variable again
        numba_config.reload_config()
    return path


def granted_threads() -> int:
    """The threads this phase may use: ``$SEALAGENT_THREADS``, else the usable CPUs."""
    value = os.environ.get(THREADS_ENV)
    if value:
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ConfigError(f"${THREADS_ENV} must be a positive integer, got {value!r}")
        return threads
    return max(1, len(os.sched_getaffinity(0)))
