"""The request queue: scheduling requests in Lotus' order, grouped for fast passes.

Order (Lotus' ``RequestQueue.Less``), first difference wins:

1. tier – a task of the high-priority tier (negative order value: WNP, WDP, FUS, FIN,
   DL, GET) comes before any other task;
2. priority – larger first (deal sectors use 1024, CC sectors 0);
3. task type order – lower first (Unseal, C1, C2, PC2, PC1, PR1, PR2, RU, AP, DC, GSK);
4. sector number – lower first (keeps on-chain bitfields compact);
5. arrival – earlier first (Lotus' sort is unstable here; this keeps passes deterministic).

Requests are kept in *groups* of tasks that are interchangeable for the scheduler: same
task type, proof, selector and file locality.  Each group is a list sorted in queue order,
so a pass can merge the groups instead of walking every request.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from sealagent.errors import ConfigError, SchedulerError
from sealagent.sched.selectors import Pools, Selector, TaskSelector
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof
from sealagent.vocab.sectors import SectorID
from sealagent.vocab.tasks import TaskType, parse_task_type

QueueKey = tuple[int, int, int, int]
"""``(tier, -priority, task type order, sector number)``: smaller is scheduled first."""

Entry = tuple[int, "SchedTask"]
"""A queued task: its :func:`packed_key` and the task itself."""

GroupKey = tuple[TaskType, RegisteredSealProof, Selector, Hashable]
"""``(task type, proof, selector, locality)``."""


_U64: Final = 1 << 64
_INT64_MAX: Final = (1 << 63) - 1
_ORDER_OFFSET: Final = 16


def queue_key(task_type: TaskType, priority: int, sector_number: int) -> QueueKey:
    """The sort key of a request (see the module docstring)."""
    return (0 if task_type.high_priority else 1, -priority, task_type.order, sector_number)


def packed_key(key: QueueKey, arrival: int) -> int:
    """``key`` and the arrival number as one integer with the same order (fast to compare).

    Priorities are int64 and sector numbers and arrivals uint64, as in Lotus.
    """
    tier, neg_priority, order, number = key
    packed = tier * _U64 + neg_priority + _INT64_MAX
    packed = packed * 32 + order + _ORDER_OFFSET
    return (packed * _U64 + number) * _U64 + arrival


@dataclass(eq=False, slots=True)
class SchedTask:
    """A scheduling request: one task of one sector, waiting for a window."""

    task_id: str
    """Unique id (Lotus' SchedId); shown by ``sched-diag`` and used by ``abort --sched``."""
    task_type: TaskType
    proof: RegisteredSealProof
    sector: SectorID
    priority: int = 0
    selector: Selector = field(default_factory=TaskSelector)
    seq: int = field(default=-1, init=False, repr=False)
    """Arrival number, given by the queue."""
    order_key: int = field(default=-1, init=False, repr=False)
    """:func:`packed_key` of this request, given by the queue."""
    group: GroupKey | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        """Normalize the task type, proof and sector; refuse malformed requests."""
        if not isinstance(self.task_id, str) or not self.task_id:
            raise SchedulerError(f"task id must be a non-empty string, got {self.task_id!r}")
        self.task_type = parse_task_type(self.task_type)
        try:
            self.proof = resolve_proof(self.proof)
        except ValueError as exc:
            raise SchedulerError(f"task {self.task_id}: {exc}") from None
        sector = self.sector
        if (not isinstance(sector, tuple) or len(sector) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                           for v in sector)):
            raise SchedulerError(f"task {self.task_id}: sector must be (miner, number) with "
                                 f"non-negative integers, got {sector!r}")
        try:
            self.sector = sector if type(sector) is SectorID else SectorID(*sector)
        except ConfigError as exc:
            raise SchedulerError(f"task {self.task_id}: sector {sector!r} out of range: "
                                 f"{exc}") from None
        if (isinstance(self.priority, bool) or not isinstance(self.priority, int)
                or not -_INT64_MAX - 1 <= self.priority <= _INT64_MAX):
            raise SchedulerError(f"task {self.task_id}: priority must be a 64-bit integer, "
                                 f"got {self.priority!r}")

    @property
    def key(self) -> QueueKey:
        """This request's position key in the queue."""
        return queue_key(self.task_type, self.priority, self.sector.number)

    @property
    def locality(self) -> Hashable:
        """Its selector's answer for the sector, read when it was queued (None if not)."""
        return None if self.group is None else self.group[3]


@dataclass(eq=False)
class TaskGroup:
    """Interchangeable requests, in queue order."""

    key: GroupKey
    entries: list[Entry] = field(default_factory=list)
    pools: Pools | None = None
    """The selector's answer, cached while the worker topology is unchanged."""
    pools_topology: int = -1
    """The topology version :attr:`pools` was computed for."""

    @property
    def task_type(self) -> TaskType:
        """The task type of every request in the group."""
        return self.key[0]

    @property
    def proof(self) -> RegisteredSealProof:
        """The proof of every request in the group."""
        return self.key[1]


class RequestQueue:
    """Queued requests, grouped and ordered; add and remove in O(log n) plus a memmove."""

    def __init__(self) -> None:
        """An empty queue."""
        self._groups: dict[GroupKey, TaskGroup] = {}
        self._tasks: dict[str, SchedTask] = {}
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        """Number of queued requests."""
        return len(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        """True when a request with this id is queued."""
        return task_id in self._tasks

    def get(self, task_id: str) -> SchedTask | None:
        """The queued request with this id, if any."""
        return self._tasks.get(task_id)

    @property
    def groups(self) -> list[TaskGroup]:
        """The non-empty groups."""
        return list(self._groups.values())

    def _enter(self, task: SchedTask, locality: Hashable) -> TaskGroup:
        if task.task_id in self._tasks:
            raise SchedulerError(f"task {task.task_id} is already queued")
        task.seq = next(self._arrivals)
        task.order_key = packed_key(task.key, task.seq)
        task.group = (task.task_type, task.proof, task.selector, locality)
        self._tasks[task.task_id] = task
        return self._group(task.group)

    def _group(self, key: GroupKey) -> TaskGroup:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = TaskGroup(key)
        return group

    def add(self, task: SchedTask, locality: Hashable = None) -> None:
        """Queue one request; ``locality`` is its selector's answer for the sector."""
        group = self._enter(task, locality)
        bisect.insort(group.entries, (task.order_key, task))

    def add_many(self, items: Iterable[tuple[SchedTask, Hashable]]) -> None:
        """Queue many ``(request, locality)`` pairs at once (one sort per group)."""
        touched: dict[GroupKey, TaskGroup] = {}
        for task, locality in items:
            group = self._enter(task, locality)
            group.entries.append((task.order_key, task))
            touched[group.key] = group
        for group in touched.values():
            group.entries.sort()

    def remove(self, task_id: str) -> SchedTask:
        """Take a request out of the queue (``sealing abort --sched``)."""
        task = self._tasks.pop(task_id, None)
        if task is None or task.group is None:
            raise SchedulerError(f"no queued task {task_id!r}")
        self._leave_group(task, task.group)
        task.group = None
        return task

    def relocate(self, task_id: str, locality: Hashable) -> None:
        """Give a queued request a new ``locality`` (its sector's files moved).

        It changes group but keeps its place in the queue order.
        """
        task = self._tasks.get(task_id)
        if task is None or task.group is None:
            raise SchedulerError(f"no queued task {task_id!r}")
        key = (task.task_type, task.proof, task.selector, locality)
        if key == task.group:
            return
        self._leave_group(task, task.group)
        task.group = key
        bisect.insort(self._group(key).entries, (task.order_key, task))

    def _leave_group(self, task: SchedTask, key: GroupKey) -> None:
        group = self._groups[key]
        entries = group.entries
        del entries[bisect.bisect_left(entries, (task.order_key,))]
        if not entries:
            del self._groups[key]

    def pop_heads(self, group: TaskGroup, count: int) -> list[SchedTask]:
        """Remove and return the first ``count`` requests of ``group``."""
        taken = [entry[-1] for entry in group.entries[:count]]
        del group.entries[:count]
        for task in taken:
            del self._tasks[task.task_id]
            task.group = None
        if not group.entries:
            self._groups.pop(group.key, None)
        return taken

    def ordered(self) -> Iterator[SchedTask]:
        """Every request in queue order."""
        for entry in heapq.merge(*(g.entries for g in self._groups.values())):
            yield entry[-1]
