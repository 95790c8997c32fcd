"""Work split over a phase's granted threads: one contiguous range per thread.

The compiled kernels release the GIL, so a range of work runs on each of a pool's threads
at once; the calling thread takes the first range itself.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sealagent.errors import InvalidInputError

T = TypeVar("T")


class ThreadShares:
    """Runs work on at most ``threads`` threads (one pool, made on first use)."""

    def __init__(self, threads: int, name: str) -> None:
        """Use at most ``threads`` threads (the calling one included); ``name`` names them."""
        if threads < 1:
            raise InvalidInputError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        """The worker pool (``threads − 1`` workers: the caller takes a share too)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max(1, self.threads - 1),
                                                thread_name_prefix=self._name)
            return self._pool

    def parts(self, count: int, minimum: int) -> int:
        """How many threads share ``count`` items, each taking at least ``minimum``."""
        return max(1, min(self.threads, count // minimum))

    def spread(self, count: int, minimum: int, work: Callable[[int, int], T]) -> list[T]:
        """``work(lo, hi)`` on one contiguous range of ``[0, count)`` per thread, in order."""
        parts = self.parts(count, minimum)
        bounds = [count * i // parts for i in range(parts + 1)]
        spans = list(itertools.pairwise(bounds))
        futures = [self._executor().submit(work, lo, hi) for lo, hi in spans[1:]]
        first = work(*spans[0])
        return [first, *(f.result() for f in futures)]
