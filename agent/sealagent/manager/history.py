"""Finished tasks per time bucket: what the dashboard's throughput and phase-time charts show.

:class:`TaskHistory` keeps, for each ``bucket`` seconds (5 minutes by default) of the last
``keep`` seconds, how many tasks of each type finished and how long they ran in total.  It
costs one dictionary update per finished task and reads in time proportional to the
buckets shown, never to the number of tasks or sectors.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Final

BUCKET_S: Final = 300.0
KEEP_S: Final = 24 * 3600.0


@dataclass
class BucketStats:
    """Tasks of one type finished in one bucket."""

    count: int = 0
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        """Mean running time (0 when none finished)."""
        return self.seconds / self.count if self.count else 0.0


class TaskHistory:
    """Counts and running times of finished tasks by time bucket and task type."""

    def __init__(self, bucket: float = BUCKET_S, keep: float = KEEP_S) -> None:
        self.bucket = bucket
        self.keep = keep
        self._buckets: dict[int, dict[str, BucketStats]] = defaultdict(dict)

    def observe(self, task_type: str, seconds: float, finished_at: float) -> None:
        """Record one finished task."""
        index = int(finished_at // self.bucket)
        stats = self._buckets[index].setdefault(task_type, BucketStats())
        stats.count += 1
        stats.seconds += max(0.0, seconds)
        oldest = index - int(self.keep // self.bucket)
        if min(self._buckets) < oldest:
            for old in [i for i in self._buckets if i < oldest]:
                del self._buckets[old]

    def series(self, now: float, span: float) -> list[tuple[float, dict[str, BucketStats]]]:
        """The buckets of the last ``span`` seconds, oldest first, empty ones included:
        ``(bucket start time, {task type: stats})``."""
        last = int(now // self.bucket)
        first = last - max(1, int(span // self.bucket)) + 1
        return [(i * self.bucket, dict(self._buckets.get(i, {}))) for i in range(first, last + 1)]
