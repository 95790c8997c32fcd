"""The manager's co-located agent (Lotus' local worker).

It is the ordinary agent (:mod:`sealagent.worker.agent`) running inside the manager
process: it uses the manager's storage paths (served by the manager's own ``/remote``),
keeps its outbox and journal under ``<repo>/agent``, and takes C1, Finalize and the move to
long-term storage (GET) plus the task types the ``[Storage] Allow*`` switches enable.
``ResourceFiltering = "disabled"`` makes it ignore resource limits; ``ParallelFetchLimit``
caps its downloads.
"""

from __future__ import annotations

import socket

from sealagent.manager.config import ManagerConfig
from sealagent.manager.repo import MinerRepo
from sealagent.sched.resources import ResourceFiltering
from sealagent.vocab.tasks import TaskType
from sealagent.web.auth import APIInfo
from sealagent.worker.agent import ALWAYS_ON, AgentConfig


def local_task_types(config: ManagerConfig) -> frozenset[TaskType]:
    """C1, Finalize and GET, plus each task type its ``Allow*`` switch enables."""
    storage = config.storage
    switches = {TaskType.ADD_PIECE: storage.allow_add_piece,
                TaskType.PRECOMMIT1: storage.allow_precommit1,
                TaskType.PRECOMMIT2: storage.allow_precommit2,
                TaskType.COMMIT2: storage.allow_commit,
                TaskType.UNSEAL: storage.allow_unseal}
    return ALWAYS_ON | {task_type for task_type, on in switches.items() if on}


def local_agent_config(config: ManagerConfig, repo: MinerRepo, api_info: APIInfo,
                       public_url: str) -> AgentConfig:
    """The built-in agent's configuration."""
    storage = config.storage
    return AgentConfig(
        api_info=api_info, repo=repo.root / "agent",
        name=storage.local_worker_name or socket.gethostname(),
        task_types=local_task_types(config), listen=None, url=public_url,
        storage_repo=repo.root, local_storage=False,
        parallel_fetch_limit=storage.parallel_fetch_limit,
        ignore_resources=ResourceFiltering.parse(storage.resource_filtering).ignores_resources)
