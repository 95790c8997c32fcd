"""The agent's repo directory (Lotus' ``LOTUS_WORKER_PATH``).

::

    <repo>/sectorstore.json  the repo is itself a sealing path (unless --no-local-storage)
    <repo>/unsealed/ sealed/ cache/ ...   its sector files
    <repo>/storage.json     the storage paths this agent uses
    <repo>/api              the agent's API multiaddr, written while ``run`` listens
    <repo>/token            the token the agent accepts (its ``MINER_API_INFO`` token)
    <repo>/worker-id        the agent's identity at the manager, made at first start
    <repo>/outbox/          results not yet acknowledged by the manager
    <repo>/journal/         tasks that started and have no result yet
    <repo>/work/            downloaded deal pieces of running AddPiece tasks
    <repo>/repo.lock        held by the running agent

The repo is ``--worker-repo``, else ``$SEALAGENT_WORKER_PATH``, else
``~/.sealagent-worker``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Final, TextIO

from sealagent.errors import ConfigError
from sealagent.repodir import lock_repo, resolve_repo_dir, write_private
from sealagent.storage.paths import (
    SECTORSTORE_FILE,
    RepoStorage,
    init_path,
    write_text_atomic,
)
from sealagent.web.auth import APIInfo, parse_api_info

REPO_ENV: Final = "SEALAGENT_WORKER_PATH"
DEFAULT_REPO: Final = "~/.sealagent-worker"
API_INFO_ENV: Final = "WORKER_API_INFO"
"""An agent's API info for the CLI, instead of reading its repo (Lotus' name)."""


def resolve_repo(arg: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The repo directory: ``arg``, else ``$SEALAGENT_WORKER_PATH``, else the default."""
    return resolve_repo_dir(arg, environ, REPO_ENV, DEFAULT_REPO)


class WorkerRepo:
    """Paths and small files of one agent repo."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.api_file = root / "api"
        self.token_file = root / "token"
        self.outbox = root / "outbox"
        self.journal = root / "journal"
        self.work = root / "work"
        self.lock_file = root / "repo.lock"
        self.identity_file = root / "worker-id"
        self.storage = RepoStorage(root)

    def init(self, *, local_storage: bool) -> None:
        """Create the directories; make the repo a sealing path unless told not to.

        Lotus' default: weight 10, ``CanSeal``, not ``CanStore``.  An existing repo is
        left as it is.
        """
        try:
            for directory in (self.root, self.outbox, self.journal, self.work):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {self.root}: {exc.strerror}") from None
        if local_storage and not (self.root / SECTORSTORE_FILE).exists():
            init_path(self.root, can_seal=True, can_store=False)
            self.storage.attach(self.root)

    def lock(self) -> TextIO:
        """Take the repo lock; keep the returned file open while running.

        :raises ConfigError: another agent holds it.
        """
        return lock_repo(self.root, self.lock_file, "agent")

    def identity(self) -> str:
        """The agent's worker id: made (a random UUID) at first start and kept, so that a
        restarted agent is the same worker and no two repos share one, whatever their
        display names (Lotus' worker session id).  Call with the repo lock held."""
        try:
            text = self.identity_file.read_text().strip()
        except FileNotFoundError:
            text = str(uuid.uuid4())
            write_text_atomic(self.identity_file, text + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot read {self.identity_file}: {exc.strerror}") from None
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise ConfigError(f"{self.identity_file} does not hold a worker id (a UUID); "
                              "delete it to make a new identity") from None

    def write_api(self, info: APIInfo) -> None:
        """Record where the agent listens and the token it accepts, for the CLI."""
        write_private(self.token_file, info.token + "\n")
        write_text_atomic(self.api_file, info.multiaddr + "\n")

    def clear_api(self) -> None:
        """Forget the listening address (the agent stopped)."""
        self.api_file.unlink(missing_ok=True)

    def api_info(self) -> APIInfo:
        """Where the running agent listens, with its token.

        :raises ConfigError: no agent listens from this repo.
        """
        try:
            address = self.api_file.read_text().strip()
            token = self.token_file.read_text().strip()
        except OSError:
            raise ConfigError(f"no agent API in {self.root} (is `sealagent run` running "
                              f"with this repo? it writes {self.api_file})") from None
        return parse_api_info(f"{token}:{address}")


def agent_api_info(repo_arg: str | None, environ: Mapping[str, str] | None = None) -> APIInfo:
    """The API info of an agent for the CLI: ``$WORKER_API_INFO``, else its repo's files."""
    env = os.environ if environ is None else environ
    text = env.get(API_INFO_ENV, "").strip()
    if text:
        try:
            return parse_api_info(text)
        except ConfigError as exc:
            raise ConfigError(f"{API_INFO_ENV}: {exc}") from None
    return WorkerRepo(resolve_repo(repo_arg, env)).api_info()
