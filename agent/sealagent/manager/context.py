"""What every part of the manager shares: configuration, database, clock, lock, wake-ups.

The manager is composed of parts that each own their state (:mod:`.sector_book`,
:mod:`.files`, :mod:`.task_book`, :mod:`.window_broker`, :mod:`.sessions`,
:mod:`.driver`);
:class:`ManagerContext` is the one thing they all hold.  Every change to the manager's
state happens under :attr:`ManagerContext.lock` and is committed to the database before
it shows in memory, so the mirror always equals the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from sealagent.manager.config import ManagerConfig
from sealagent.manager.db import Database
from sealagent.manager.fsm import Policy
from sealagent.vocab.registry import RegisteredSealProof, default_proof


class Wake:
    """A wake-up call: one loop waits for it, any part may :meth:`set` it."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        """Wake the loop (now, or as soon as it waits again)."""
        self._event.set()

    def reset(self) -> None:
        """Forget earlier calls: only calls from now on wake the next :meth:`wait`."""
        self._event = trio.Event()

    async def wait(self, at_most: float = math.inf) -> None:
        """Wait for a call, at most ``at_most`` seconds."""
        with trio.move_on_after(at_most):
            await self._event.wait()


@dataclass
class ManagerContext:
    """The configuration and shared resources of one manager."""

    config: ManagerConfig
    db: Database
    clock: Callable[[], float]
    lock: trio.Lock = field(default_factory=trio.Lock)
    """Serialises every change to the manager's state."""
    pipeline_wake: Wake = field(default_factory=Wake)
    """Wakes the pipeline driver (a sector changed)."""
    sched_wake: Wake = field(default_factory=Wake)
    """Wakes the scheduler (a task, a window or a worker changed)."""
    policy: Policy = field(init=False)
    """The state machine's knobs."""
    miner: int = field(init=False)
    """The miner's actor id."""
    proof: RegisteredSealProof = field(init=False)
    """The proof new sectors are sealed with."""

    def __post_init__(self) -> None:
        self.policy = Policy.from_config(self.config)
        self.miner = self.config.miner.actor_id
        self.proof = default_proof(self.config.miner.sector_size)
