"""A bounded pool for CPU-bound work (embedding, fitting, forecasting) off the event loop.

At most `workers` tasks run and `queue` more wait; past that, `submit` refuses at once with
`PoolFullError` (the service answers 429 with Retry-After) instead of queueing without bound and
running out of memory under load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from detectors.errors import CollapseGuardError

T = TypeVar("T")


class PoolFullError(CollapseGuardError):
    """Every worker is busy and the queue is full: try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WorkPool:
    def __init__(self, *, workers: int, queue: int, retry_after: int = 5) -> None:
        self.capacity = workers + queue
        self.retry_after = retry_after
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cg-work")
        self._lock = threading.Lock()
        self.in_flight = 0

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        if not self._slots.acquire(blocking=False):
            raise PoolFullError(
                f"the service is busy ({self.capacity} tasks running or queued): retry later",
                self.retry_after,
            )
        with self._lock:
            self.in_flight += 1
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        return future

    def _release(self) -> None:
        with self._lock:
            self.in_flight -= 1
        self._slots.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
