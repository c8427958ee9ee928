"""Locks and in-flight state that a forked child builds anew.

A process forked while another thread holds one of this library's locks, or
leads a preparation that other threads wait for, hands the child that lock
held, or that wait, forever: the thread that would release it does not exist
in the child (``gunicorn --preload`` after ``warm(background=True)`` does
exactly this). So every owner of such state says here what to build afresh,
and ``os.register_at_fork`` builds it in each child before any of its code
runs. Owners are held weakly: registering keeps nothing alive.

>>> import threading
>>> class Counter:
...     def __init__(self) -> None:
...         self.lock = threading.Lock()
...         renew_after_fork(self, lock=threading.Lock)
>>> counter = Counter()
>>> counter.lock.acquire()
True
>>> renew_all()  # what a forked child runs
>>> counter.lock.locked()
False
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

__all__ = ["renew_after_fork", "renew_all"]

_owners: weakref.WeakKeyDictionary[object, dict[str, Callable[[], object]]] = (
    weakref.WeakKeyDictionary()
)
_registry_lock = threading.Lock()


def renew_after_fork(owner: object, **factories: Callable[[], object]) -> None:
    """In a forked child, set each named attribute of ``owner`` to a fresh ``factory()``.

    ``owner`` may be any object that takes weak references, a module included
    (``renew_after_fork(sys.modules[__name__], _lock=threading.Lock)``).
    """
    with _registry_lock:
        _owners.setdefault(owner, {}).update(factories)


def renew_all() -> None:
    """Build every registered attribute anew (the child's side of a fork)."""
    global _registry_lock  # noqa: PLW0603 -- it may have been held by a thread gone in the child
    _registry_lock = threading.Lock()
    for owner, factories in list(_owners.items()):
        for name, factory in factories.items():
            setattr(owner, name, factory())


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=renew_all)
