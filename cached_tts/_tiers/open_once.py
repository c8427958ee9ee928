"""A store's client, opened once per process within a deadline, whoever asks meanwhile.

Opening a client may hang: credentials may come from an instance's metadata
service that does not answer. Were callers to take turns on a lock and each
then make its own attempt, the k-th caller would wait k deadlines (8 threads:
10, 20, ... 80 s). Here one attempt runs at a time, in a thread of its own.
Every caller that needs the client meanwhile waits for that attempt, never
past its deadline; when it fails or runs out, they all give up at once, and
only one of them reports it (:class:`OpenFailedElsewhereError` tells the others),
so the tier's back-off starts once. An attempt that is still hung when the
next caller comes is not started again: that caller gives up at once. An
attempt that succeeds after its deadline still leaves its client for later
callers.

A forked child starts with no client and no attempt: the parent's thread does
not exist there, and a client's connections do not survive a fork.

>>> opener = OpenOnce(lambda: "client", timeout=1.0)
>>> opener.get(), opener.get()
('client', 'client')
>>> import threading
>>> hung = threading.Event()
>>> stuck = OpenOnce(hung.wait, timeout=0.01)
>>> stuck.get()
Traceback (most recent call last):
...
TimeoutError: opening the client took longer than 0.01 s
>>> stuck.get()  # still hung: given up on at once, not tried again
Traceback (most recent call last):
...
TimeoutError: opening the client took longer than 0.01 s (it is still running)
>>> hung.set()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from cached_tts._forksafe import renew_after_fork

__all__ = ["OpenFailedElsewhereError", "OpenOnce"]

_T = TypeVar("_T")


class OpenFailedElsewhereError(OSError):
    """The attempt this caller waited for failed; another caller reports why.

    A subclass of ``OSError``, so that commands report it like any failure of
    the store; lookups skip the tier without counting the failure twice.
    """


class _Attempt(Generic[_T]):
    """One run of the opening function, and what came of it."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.done = threading.Event()
        self.client: _T | None = None
        self.error: BaseException | None = None
        # Whether a caller that waited for it has reported its failure.
        self.reported = False


class OpenOnce(Generic[_T]):
    """The client ``open_client()`` builds, built at most once at a time in a process."""

    def __init__(self, open_client: Callable[[], _T], *, timeout: float) -> None:
        self.open_client = open_client
        self.timeout = timeout
        self._lock = threading.Lock()  # held to look and to start, never while opening
        self._client: _T | None = None
        self._attempt: _Attempt[_T] | None = None
        renew_after_fork(self, _lock=threading.Lock, _client=_nothing, _attempt=_nothing)

    def get(self) -> _T:
        """The client; the opening's error, or ``TimeoutError`` past its deadline."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is not None:
                return self._client
            attempt = self._attempt
            late = attempt is not None and time.monotonic() >= attempt.deadline
            if attempt is None or (attempt.done.is_set() and attempt.error is not None):
                attempt = self._attempt = self._start()
                late = False
        if late and not attempt.done.is_set():
            raise TimeoutError(
                f"opening the client took longer than {self.timeout:.3g} s (it is still running)"
            )
        return self._wait(attempt)

    def _start(self) -> _Attempt[_T]:
        attempt: _Attempt[_T] = _Attempt(self.timeout)

        def run() -> None:
            try:
                client = self.open_client()
            except BaseException as exc:  # noqa: BLE001 -- handed to the callers, whatever it is
                attempt.error = exc
            else:
                attempt.client = client
                with self._lock:
                    if self._attempt is attempt:
                        self._client = client
            finally:
                attempt.done.set()

        threading.Thread(target=run, name="cached-tts-open", daemon=True).start()
        return attempt

    def _wait(self, attempt: _Attempt[_T]) -> _T:
        if attempt.done.wait(max(0.0, attempt.deadline - time.monotonic())):
            if attempt.error is None:
                return attempt.client  # type: ignore[return-value]  # set before done
            error: BaseException = attempt.error
        else:
            error = TimeoutError(f"opening the client took longer than {self.timeout:.3g} s")
        with self._lock:
            first, attempt.reported = not attempt.reported, True
        if first:
            raise error
        raise OpenFailedElsewhereError(f"opening the client failed ({_name(error)}: {error})")


def _nothing() -> None:
    return None


def _name(exc: BaseException) -> str:
    return type(exc).__name__
