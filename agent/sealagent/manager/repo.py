"""The manager's repo directory (Lotus' ``LOTUS_MINER_PATH``).

::

    <repo>/config.toml      the configuration (:mod:`sealagent.manager.config`)
    <repo>/keystore/jwt-secret  the JWT signing secret (mode 0600)
    <repo>/token            an admin token, for the CLI on this host
    <repo>/api              the API multiaddr ``miner run`` listens on (maybe 0.0.0.0)
    <repo>/manager.db       the SQLite store
    <repo>/staging/         deal pieces waiting to be added to a sector
    <repo>/storage.json     the storage paths this manager serves
    <repo>/repo.lock        held by the running manager

The repo is ``--repo``, else ``$SEALAGENT_MINER_PATH``, else ``~/.sealagent-miner``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Final, TextIO

from sealagent.errors import ConfigError
from sealagent.manager.config import CONFIG_FILE, ManagerConfig, load_config, render_config
from sealagent.manager.db import DB_FILE
from sealagent.repodir import lock_repo, resolve_repo_dir, write_private
from sealagent.rpc.netaddr import is_wildcard, loopback_for
from sealagent.storage.paths import RepoStorage, init_path, write_text_atomic
from sealagent.web.auth import (
    PERMISSIONS,
    APIInfo,
    create_token,
    load_or_create_secret,
    parse_api_info,
)

REPO_ENV: Final = "SEALAGENT_MINER_PATH"
DEFAULT_REPO: Final = "~/.sealagent-miner"


def resolve_repo(arg: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The repo directory: ``arg``, else ``$SEALAGENT_MINER_PATH``, else the default."""
    return resolve_repo_dir(arg, environ, REPO_ENV, DEFAULT_REPO)


class MinerRepo:
    """Paths and small files of one manager repo."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config_file = root / CONFIG_FILE
        self.secret_file = root / "keystore" / "jwt-secret"
        self.token_file = root / "token"
        self.api_file = root / "api"
        self.db_file = root / DB_FILE
        self.staging = root / "staging"
        self.lock_file = root / "repo.lock"
        self.storage = RepoStorage(root)

    @property
    def initialized(self) -> bool:
        """True once ``miner init`` ran here."""
        return self.config_file.exists() and self.secret_file.exists()

    def require(self) -> MinerRepo:
        """Return ``self``, or raise a clear error when the repo was never initialised."""
        if self.secret_file.exists() and not self.config_file.exists():
            raise ConfigError(f"{self.config_file} is missing (the manager repo {self.root} "
                              "has no configuration); restore it (an empty file runs on "
                              "the defaults)")
        if not self.initialized:
            raise ConfigError(f"no manager repo at {self.root}; run "
                              f"`sealagent miner init --repo {self.root}` first")
        return self

    def init(self, config: ManagerConfig, *, local_storage: bool = True) -> None:
        """Create the repo: config, secret, admin token, staging dir, local storage path."""
        if self.initialized:
            raise ConfigError(f"{self.root} is already a manager repo")
        config.validate()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.staging.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {self.root}: {exc.strerror}") from None
        secret = load_or_create_secret(self.secret_file)
        write_private(self.token_file, create_token(secret, PERMISSIONS) + "\n")
        if local_storage:
            init_path(self.root, can_seal=True, can_store=True)
            self.storage.attach(self.root)
        self.config_file.write_text(render_config(config))

    def config(self) -> ManagerConfig:
        """The repo's configuration."""
        return load_config(self.config_file)

    def secret(self) -> bytes:
        """The JWT signing secret."""
        return load_or_create_secret(self.secret_file)

    def token(self) -> str:
        """The admin token written at init."""
        try:
            return self.token_file.read_text().strip()
        except OSError:
            raise ConfigError(f"no token in {self.root}; is it a manager repo?") from None

    def listen_info(self) -> APIInfo:
        """Where the running manager listens (maybe a wildcard host), with the admin token.

        :raises ConfigError: no manager has listened from this repo yet.
        """
        try:
            address = self.api_file.read_text().strip()
        except OSError:
            raise ConfigError(f"no API address in {self.root} (is `sealagent miner run` "
                              f"running? it writes {self.api_file})") from None
        return parse_api_info(f"{self.token()}:{address}")

    def api_info(self) -> APIInfo:
        """How to reach the running manager from this host, with the admin token.

        A manager listening on every address (``0.0.0.0``, ``::``) is reached at loopback.

        :raises ConfigError: no manager has listened from this repo yet.
        """
        info = self.listen_info()
        if is_wildcard(info.host):
            return replace(info, host=loopback_for(info.host))
        return info

    def write_api(self, multiaddr: str) -> None:
        """Record the listening address for the CLI."""
        write_text_atomic(self.api_file, multiaddr + "\n")

    def lock(self) -> TextIO:
        """Take the repo lock; keep the returned file open while running.

        :raises ConfigError: another manager holds it.
        """
        return lock_repo(self.root, self.lock_file, "manager")
