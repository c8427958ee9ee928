"""Single flight: concurrent calls for one key share one computation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from cached_tts._forksafe import renew_after_fork

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Run ``fn`` once per key at a time; callers that arrive meanwhile wait.

    >>> flight: SingleFlight[int] = SingleFlight()
    >>> flight.do("answer", lambda: 42)
    (42, True)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, Future[T]] = {}
        # A forked child has no thread to finish a computation under way.
        renew_after_fork(self, _lock=threading.Lock, _calls=dict)

    def do(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """``fn()``'s value and whether this caller computed it.

        Callers that joined a computation already under way get its value, or
        its exception re-raised.
        """
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = Future()
        if not leader:
            return call.result(), False
        try:
            value = fn()
        except BaseException as exc:
            call.set_exception(exc)
            raise
        else:
            call.set_result(value)
            return value, True
        finally:
            with self._lock:
                del self._calls[key]
