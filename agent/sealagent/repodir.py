"""What the manager's repo and an agent's repo share: where it is, its lock, small files.

(:mod:`sealagent.manager.repo` and :mod:`sealagent.worker.repo` hold what each keeps.)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from sealagent.errors import ConfigError


def resolve_repo_dir(arg: str | None, environ: Mapping[str, str] | None, env_name: str,
                     default: str) -> Path:
    """The repo directory: ``arg``, else ``$<env_name>``, else ``default`` (absolute)."""
    env = os.environ if environ is None else environ
    return Path(arg or env.get(env_name) or default).expanduser().absolute()


def lock_repo(root: Path, lock_file: Path, owner: str) -> TextIO:
    """Take the repo lock and write this process' id in it; keep the file open to hold it.

    :raises ConfigError: another running ``owner`` (``manager``, ``agent``) holds it.
    """
    handle = open(lock_file, "a+")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(f"{root} is in use by another running {owner}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)

