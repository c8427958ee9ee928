"""Calls that may block forever, given a deadline: a shared folder on a hung mount.

A read from an NFS or SMB mount whose server is gone blocks in the kernel, with
no timeout to set and nothing to cancel. A lookup must not wait for it, so the
call runs in a thread of its own and the caller stops waiting at the deadline.
That thread stays blocked until the mount answers: a runner lets at most
``limit`` calls be outstanding at once, and beyond that a call fails when its
deadline comes rather than start yet another thread that would block.

>>> runner = DeadlineRunner(limit=2)
>>> runner.run(1.0, sum, [1, 2, 3])
6
>>> import threading
>>> hung = threading.Event()
>>> runner.run(0.01, hung.wait)
Traceback (most recent call last):
...
TimeoutError: no answer within 0.01 s
>>> hung.set()  # the mount answers at last: the call's thread ends
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cached_tts._forksafe import renew_after_fork

__all__ = ["DeadlineRunner"]

_T = TypeVar("_T")


class DeadlineRunner:
    """Runs calls in threads of their own, and gives up waiting for each at its deadline."""

    def __init__(self, limit: int = 4) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        # A thread that held a slot does not exist in a forked child.
        renew_after_fork(self, _slots=lambda: threading.BoundedSemaphore(limit))

    def run(self, timeout: float, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``function(*args, **kwargs)``; ``TimeoutError`` if it has not returned in ``timeout`` s.

        What ``function`` raises is raised here. A call given up on goes on in
        its thread (daemonic: it never holds up the process's exit).
        """
        deadline = time.monotonic() + timeout
        slots = self._slots
        if not slots.acquire(timeout=timeout):
            raise TimeoutError(
                f"no answer within {timeout:.3g} s: {self.limit} earlier calls have not returned"
            )
        done = threading.Event()
        outcome: list[tuple[bool, Any]] = []

        def call() -> None:
            try:
                outcome.append((True, function(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller, whatever it is
                outcome.append((False, exc))
            finally:
                slots.release()
                done.set()

        threading.Thread(target=call, name="cached-tts-deadline", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"no answer within {timeout:.3g} s")
        returned, value = outcome[0]
        if not returned:
            raise value
        result: _T = value
        return result
