"""Checks of settings fields, done when the settings are built.

A bad value (a float TTL, a timeout of zero, a negative budget) would
otherwise fail on every later call, far from where it was written, or worse,
quietly do something else (a TTL of 0 deletes the key it refreshes). Each
check names the field, what it accepts, and the value it got.
"""

from __future__ import annotations

import math
import numbers
from datetime import timedelta

__all__ = ["seconds", "ttl_seconds", "whole_number"]


def seconds(owner: str, name: str, value: object, *, zero_ok: bool = False) -> float:
    """``value`` as a duration in seconds: a finite number > 0 (or >= 0 with ``zero_ok``).

    A value of another type raises ``TypeError``; one out of range ``ValueError``.

    >>> seconds("TierSettings", "read_timeout", 2)
    2.0
    >>> seconds("TierSettings", "read_timeout", float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: TierSettings.read_timeout must be a finite number of seconds > 0, got inf
    """
    what = f"a finite number of seconds {'>= 0' if zero_ok else '> 0'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}.{name} must be {what}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
        raise ValueError(f"{owner}.{name} must be {what}, got {value!r}")
    return number


def whole_number(owner: str, name: str, value: object, *, minimum: int, unit: str = "") -> int:
    """``value`` as a whole number >= ``minimum`` (never a bool or a float).

    >>> whole_number("Backoff", "failures", 3, minimum=1)
    3
    >>> whole_number("Backoff", "failures", 2.5, minimum=1)
    Traceback (most recent call last):
    ...
    TypeError: Backoff.failures must be a whole number >= 1, got 2.5
    """
    what = f"a whole number of {unit}" if unit else "a whole number"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}.{name} must be {what} >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{owner}.{name} must be {what} >= {minimum}, got {value!r}")
    return int(value)


def ttl_seconds(owner: str, value: object) -> int | None:
    """A time to live as Redis takes it: whole seconds >= 1, from an int or a ``timedelta``.

    ``None`` (keep entries) stays ``None``.

    >>> ttl_seconds("RemoteSettings", timedelta(days=1))
    86400
    >>> ttl_seconds("RemoteSettings", 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: RemoteSettings.ttl must be a whole number of seconds >= 1, ...; got 0
    """
    if value is None:
        return None
    what = (
        f"{owner}.ttl must be a whole number of seconds >= 1, a datetime.timedelta of whole "
        f"seconds (at least 1 s), or None to keep entries forever; got {value!r}"
    )
    if isinstance(value, timedelta):
        if value.microseconds or value.total_seconds() < 1:
            raise ValueError(what)
        return int(value.total_seconds())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(what)
    if int(value) < 1:
        raise ValueError(what)
    return int(value)
