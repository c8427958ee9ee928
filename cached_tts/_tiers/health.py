"""When a tier that fails is skipped, and when it is tried again.

Every tier (the disk folder, Redis) is an optimisation, never a dependency of
a result, so a failure is logged and the tier is skipped for a while rather
than failing the caller. One :class:`Backoff` policy says how long; one
:class:`Health` object per tier keeps the state: a tier that fails
``failures`` times in a row is set aside with one warning, skipped for a
back-off that doubles up to a maximum while it keeps failing, and back in use
(logged once at info) as soon as a retry succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cached_tts._forksafe import renew_after_fork
from cached_tts._tiers.checks import seconds, whole_number

__all__ = ["Backoff", "Health"]

logger = logging.getLogger("cached_tts")


@dataclass(frozen=True)
class Backoff:
    """How a failing tier is skipped. Times are in seconds.

    Every field is checked when it is built: times are finite numbers > 0,
    ``maximum`` at least ``initial``, ``failures`` a whole number >= 1.

    >>> Backoff(initial=5.0, maximum=60.0, failures=3).failures
    3
    >>> Backoff(failures=0)
    Traceback (most recent call last):
    ...
    ValueError: Backoff.failures must be a whole number >= 1, got 0
    """

    #: The first back-off; it doubles while the tier keeps failing.
    initial: float = 5.0
    #: The longest back-off.
    maximum: float = 60.0
    #: Failures in a row before the tier is set aside; fewer only skip that one call.
    failures: int = 1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        initial = seconds(owner, "initial", self.initial)
        maximum = seconds(owner, "maximum", self.maximum)
        if maximum < initial:
            raise ValueError(
                f"{owner}.maximum ({self.maximum!r}) must be >= initial ({self.initial!r}): "
                "give both, e.g. Backoff(initial=120.0, maximum=120.0)"
            )
        failures = whole_number(owner, "failures", self.failures, minimum=1)
        # Frozen: the checked values replace the given ones once, here.
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "maximum", maximum)
        object.__setattr__(self, "failures", failures)


class Health:
    """Whether one tier is in use, from its recent successes and failures.

    ``what`` names the tier in messages ("Redis cache tier").

    >>> health = Health("Demo tier", Backoff(initial=5.0, failures=2))
    >>> health.failed(OSError("disk full")); health.available()  # once: skipped once
    True
    >>> health.failed(OSError("disk full")); health.available()  # again: set aside
    False
    >>> health.errors
    2
    """

    def __init__(
        self, what: str, policy: Backoff, *, clock: Callable[[], float] | None = None
    ) -> None:
        self.what = what
        self.policy = policy
        self._clock = clock or _now
        self._lock = threading.Lock()
        renew_after_fork(self, _lock=threading.Lock)
        self._in_a_row = 0
        self._down_until = 0.0  # clock time before which the tier is skipped
        self._backoff = policy.initial
        self._down = False
        #: Failures seen, in all.
        self.errors = 0

    def __repr__(self) -> str:
        state = "set aside" if self._down else "in use"
        return f"<Health {self.what}: {state}, {self.errors} errors>"

    def available(self) -> bool:
        """Whether the tier is in use now (it is skipped during a back-off)."""
        return self._clock() >= self._down_until

    @property
    def down(self) -> bool:
        """Whether the tier is set aside (in a back-off, or awaiting a successful retry)."""
        return self._down

    def failed(self, exc: BaseException) -> None:
        """Record a failure; set the tier aside once it keeps failing."""
        with self._lock:
            self.errors += 1
            self._in_a_row += 1
            if not self._down and self._in_a_row < self.policy.failures:
                logger.debug("%s failed (%s: %s); skipped this once", self.what, _name(exc), exc)
                return
            self._down_until = self._clock() + self._backoff
            if not self._down:
                self._down = True
                logger.warning(
                    "%s failed (%s: %s); skipping it, retrying in %.0f s",
                    self.what,
                    _name(exc),
                    exc,
                    self._backoff,
                )
            self._backoff = min(self._backoff * 2, self.policy.maximum)

    def succeeded(self) -> None:
        """Record a success; a tier that was set aside is back in use."""
        if not self._in_a_row and not self._down:
            return  # the common case, without taking the lock
        with self._lock:
            self._in_a_row = 0
            if self._down:
                self._down = False
                self._backoff = self.policy.initial
                logger.info("%s is back in use", self.what)


def _now() -> float:
    """The clock of back-offs (a test may replace it before building a tier)."""
    return time.monotonic()


def _name(exc: BaseException) -> str:
    return type(exc).__name__
