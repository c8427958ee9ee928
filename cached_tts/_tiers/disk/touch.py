"""Refreshing a disk entry's last use for memory hits, away from the hit.

A voice served from memory still marks its file as used now and then, so that
disk eviction (least recently used first) does not remove what the process
uses most. That mark is an ``os.utime`` on the folder, which may sit on a
network mount whose server hangs: a hit must never wait for it. So a hit only
notes the entry (at most once a minute per entry, and not while the folder is
set aside), and one thread of the cache's own marks what was noted. The thread
ends when it has had nothing to do for a while; a hung mark holds up that
thread alone, and while it does the notes wait, one per entry at most.

>>> marked = []
>>> toucher = Toucher(marked.append, may_touch=lambda: True, interval=60.0)
>>> toucher.note("a"); toucher.note("a")  # the second is within the minute: no note
>>> toucher.join(timeout=5.0)
True
>>> marked
['a']
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, Protocol, TypeVar

from cached_tts._forksafe import renew_after_fork

__all__ = ["Held", "Toucher"]

logger = logging.getLogger("cached_tts")

_K = TypeVar("_K", bound=Hashable)

# The thread waits this long for a new note before it ends.
_IDLE_SECONDS = 30.0


class Held(Protocol):
    """What the memory tier holds: the keys whose last touch is worth remembering."""

    def __contains__(self, key: object, /) -> bool: ...

    def __len__(self) -> int: ...


class Toucher(Generic[_K]):
    """Calls ``touch(key)`` in a thread of its own, at most once per ``interval`` s per key.

    ``may_touch()`` says whether the folder is in use: nothing is noted or
    touched while it says no. Keys no longer in ``held`` are forgotten in time.
    """

    def __init__(
        self,
        touch: Callable[[_K], None],
        *,
        may_touch: Callable[[], bool],
        interval: float,
        held: Held | None = None,
    ) -> None:
        self._touch = touch
        self._may_touch = may_touch
        self.interval = interval
        self._held = held
        # When each key was last noted, by the monotonic clock; read without the lock.
        self._last: dict[_K, float] = {}
        self._wake = threading.Condition()  # guards what follows
        self._pending: dict[_K, None] = {}
        self._worker: threading.Thread | None = None
        self._touching = False
        # The worker thread does not exist in a forked child.
        renew_after_fork(
            self, _wake=threading.Condition, _pending=dict, _worker=_nothing, _touching=bool
        )

    def note(self, key: _K) -> None:
        """Have ``key`` touched soon, unless it was within ``interval``; never waits for it."""
        now = time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval or not self._may_touch():
            return
        with self._wake:
            self._last[key] = now
            held = self._held
            if held is not None and len(self._last) > 2 * len(held) + 64:
                self._last = {key: at for key, at in self._last.items() if key in held}
            self._pending[key] = None
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name="cached-tts-touch", daemon=True
                )
                try:
                    self._worker.start()
                except RuntimeError as exc:
                    # No thread to be had (a pids limit, the interpreter shutting
                    # down): a hit must not raise for it, and a later note must try
                    # again, so no worker is left behind and the note is dropped.
                    self._worker = None
                    self._pending.pop(key, None)
                    logger.debug("Could not start the thread that marks entries as used: %s", exc)
                    return
            self._wake.notify_all()  # join may wait on it too

    def forget(self, keys: Iterable[_K] | None = None) -> None:
        """Forget when ``keys`` (all keys, if ``None``) were noted."""
        with self._wake:
            if keys is None:
                self._last.clear()
            else:
                for key in keys:
                    self._last.pop(key, None)

    def join(self, timeout: float) -> bool:
        """Wait until every note is touched; whether that came within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._pending or self._touching:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                self._touching = False
                if not self._pending:
                    self._wake.wait(_IDLE_SECONDS)
                if not self._pending:
                    self._worker = None
                    return
                key = next(iter(self._pending))
                del self._pending[key]
                self._touching = True
            # The folder may have been set aside since the note.
            if self._may_touch():
                try:
                    self._touch(key)
                except Exception as exc:  # noqa: BLE001 -- a missed touch only ages the entry
                    logger.debug("Could not mark a cache entry as used: %s", exc)


def _nothing() -> None:
    return None
