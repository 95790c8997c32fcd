"""The agent's own JSON-RPC API (``Worker.*``), for ``sealagent info``, ``tasks`` and
``storage attach|detach|redeclare --worker``.

It is served on the agent's listen address next to ``/remote`` and accepts the token the
agent itself was given (``MINER_API_INFO``); ``<repo>/api`` and ``<repo>/token`` tell the
CLI where and how to call it.

==========================================  =====  ==========================================
method                                      perm   what
==========================================  =====  ==========================================
``Worker.Info()``                           read   name, session, tasks, backends, hardware,
                                                   paths, held tasks, downloads in progress
``Worker.TaskEnable(task_type)``            admin  take this task type again
``Worker.TaskDisable(task_type)``           admin  take no new tasks of this type
``Worker.StorageAttach(path, init, seal,    admin  attach a storage path to this agent (and,
store, weight, max_storage)``                      with ``init``, create its sectorstore.json)
``Worker.StorageDetach(path, force)``       admin  stop using a path (refused while it holds
                                                   the only copy of a sector's file, unless
                                                   ``force``)
``Worker.StorageRedeclare()``               admin  index exactly the sector files now in
                                                   this agent's paths
==========================================  =====  ==========================================

``task_type`` is a Lotus name (``seal/v0/precommit/1``) or a short one (``PC1``).  Task
type changes take effect at the next heartbeat, as in Lotus at the next scheduling pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from sealagent.errors import ConfigError
from sealagent.rpc.jsonrpc import exported
from sealagent.storage.paths import SECTORSTORE_FILE, init_path
from sealagent.vocab.tasks import parse_task_type

if TYPE_CHECKING:
    from sealagent.worker.agent import Agent


class AgentAPI:
    """The ``Worker`` namespace of one running agent."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    @exported("read")
    async def info(self) -> dict[str, Any]:
        """The agent's status (see :meth:`Agent.status`)."""
        return await trio.to_thread.run_sync(self.agent.status)

    @exported("admin")
    async def task_enable(self, task_type: str) -> list[str]:
        """Take ``task_type`` tasks again; returns the task types now accepted."""
        self.agent.enable(parse_task_type(task_type))
        return self.agent.task_types()

    @exported("admin")
    async def task_disable(self, task_type: str) -> list[str]:
        """Take no new ``task_type`` tasks; returns the task types now accepted."""
        self.agent.disable(parse_task_type(task_type))
        return self.agent.task_types()

    @exported("admin")
    async def storage_attach(self, path: str, init: bool = False, seal: bool = False,
                             store: bool = False, weight: int = 10, max_storage: int = 0,
                             groups: list[str] | None = None,
                             allow_to: list[str] | None = None) -> dict[str, Any]:
        """Attach ``path`` (on the agent's host) to this agent; returns its metadata."""
        directory = Path(path)
        if not directory.is_absolute():
            raise ConfigError(f"give the agent an absolute path, not {path!r}")

        def attach() -> dict[str, Any]:
            if init:
                if not (seal or store):
                    raise ConfigError("a new path must allow sealing (--seal), "
                                      "storing (--store) or both")
                if (directory / SECTORSTORE_FILE).exists():
                    raise ConfigError(f"{directory} already has a {SECTORSTORE_FILE}")
                init_path(directory, can_seal=seal, can_store=store, weight=weight,
                          max_storage=max_storage, groups=groups or (),
                          allow_to=allow_to or ())
            return self.agent.storage.attach(directory).meta.to_json()

        return await trio.to_thread.run_sync(attach)

    @exported("admin")
    async def storage_detach(self, path: str, force: bool = False) -> dict[str, str]:
        """Stop using ``path`` (on the agent's host; its files stay): the manager drops it
        from its index first, refusing while it holds the only copy of a sector's file
        unless ``force``."""
        directory = Path(path)
        if not directory.is_absolute():
            raise ConfigError(f"give the agent an absolute path, not {path!r}")
        return {"id": await self.agent.detach_path(directory, force=force), "path": path}

    @exported("admin")
    async def storage_redeclare(self) -> dict[str, list[int]]:
        """Make the manager's index hold exactly the sector files in this agent's paths;
        answers the sectors whose files changed."""
        return {"changed": await self.agent.redeclare()}
