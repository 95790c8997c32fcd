"""Assigners: which of the workers that fit a task gets it (``[Storage] Assigner``).

Each assigner gives every candidate worker a *load* for the task; the worker with the
lowest load wins, ties going to the worker with fewer enabled task types when the
selector asks for it, then to the worker whose open window has waited longest.  Within
the chosen worker the oldest window that still fits takes the task (Lotus: "same worker
→ older window first").  Loads only grow during a pass, so candidates sit in heaps and
are re-keyed lazily; a load lives in a :class:`Load` shared by every heap that holds
the worker.

``utilization`` (default; also ``""``)
    the worker's utilization (running + preparing + assigned windows), increased by what
    each assignment of this pass adds.  Lotus scans candidates sorted by the utilization
    they had *before* the pass and stops at the first that is not better, so a batch of
    tasks could pile onto one worker while others stood idle; here the true lowest wins
    every time.
``spread``
    the fewest tasks assigned in this pass to the worker.
``spread-tasks`` (Lotus' ``experiment-spread-tasks``)
    the fewest tasks of this task type assigned in this pass to the worker.
``…-qcount`` variants
    also count the tasks the worker already runs, prepares or has in assigned windows.
``random`` (``experiment-random``)
    a seeded pseudo-random order that moves on after each assignment: reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, Protocol

from sealagent.errors import ConfigError
from sealagent.sched.windows import SchedWorker
from sealagent.vocab.tasks import TaskType


class Load:
    """A worker's load during one pass, shared by every candidate pool of the same key:
    an assignment made from one pool raises it for all of them."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        """Start at ``value``."""
        self.value = value

    def __repr__(self) -> str:
        return f"Load({self.value!r})"


class PassAssigner(Protocol):
    """Per-pass state of an assigner."""

    def load(self, worker: SchedWorker, task_type: TaskType) -> Load:
        """The load of ``worker`` for tasks of ``task_type`` (lower load wins)."""

    def record(self, load: Load, delta: float) -> float:
        """A task was assigned under ``load`` (``delta``: the window's utilization
        increase); returns the new load."""


class _Utilization:
    def __init__(self) -> None:
        self._loads: dict[str, Load] = {}

    def load(self, worker: SchedWorker, task_type: TaskType) -> Load:
        found = self._loads.get(worker.worker_id)
        if found is None:
            found = self._loads[worker.worker_id] = Load(worker.utilization())
        return found

    def record(self, load: Load, delta: float) -> float:
        load.value += delta
        return load.value


class _Spread:
    def __init__(self, per_task_type: bool, count_queued: bool) -> None:
        self._per_task_type = per_task_type
        self._count_queued = count_queued
        self._loads: dict[tuple[str, TaskType | None], Load] = {}

    def load(self, worker: SchedWorker, task_type: TaskType) -> Load:
        counted = task_type if self._per_task_type else None
        key = (worker.worker_id, counted)
        found = self._loads.get(key)
        if found is None:
            count = 0
            if self._count_queued:
                count = worker.count() if counted is None else worker.count_type(counted)
            found = self._loads[key] = Load(float(count))
        return found

    def record(self, load: Load, delta: float) -> float:
        load.value += 1
        return load.value


class _Random:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._loads: dict[str, Load] = {}

    def load(self, worker: SchedWorker, task_type: TaskType) -> Load:
        found = self._loads.get(worker.worker_id)
        if found is None:
            found = self._loads[worker.worker_id] = Load(self._rng.random())
        return found

    def record(self, load: Load, delta: float) -> float:
        load.value += self._rng.random()
        return load.value


_SPREAD: Final[dict[str, tuple[bool, bool]]] = {
    "spread": (False, False),
    "spread-qcount": (False, True),
    "spread-tasks": (True, False),
    "spread-tasks-qcount": (True, True),
}

ASSIGNER_NAMES: Final = ("utilization", "spread", "spread-qcount", "spread-tasks",
                         "spread-tasks-qcount", "random")
"""Accepted names (each also with Lotus' ``experiment-`` prefix, and ``""`` = utilization)."""


@dataclass(frozen=True)
class Assigner:
    """A configured assigner; :meth:`new_pass` gives the state of one pass."""

    name: str
    seed: int = 0

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Assigner:
        """Accept a name of :data:`ASSIGNER_NAMES` (or Lotus' spelling)."""
        name = text.strip().lower().removeprefix("experiment-") or "utilization"
        if name not in ASSIGNER_NAMES:
            raise ConfigError(f"unknown assigner {text!r}; expected one of "
                              f"{', '.join(ASSIGNER_NAMES)}")
        return cls(name, seed)

    def new_pass(self, pass_number: int) -> PassAssigner:
        """Fresh per-pass state."""
        if self.name == "utilization":
            return _Utilization()
        if self.name == "random":
            return _Random(random.Random(self.seed * 1_000_003 + pass_number))
        per_task_type, count_queued = _SPREAD[self.name]
        return _Spread(per_task_type, count_queued)
