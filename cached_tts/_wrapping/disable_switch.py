"""The ``$CACHED_TTS_DISABLE`` switch, which bypasses every cache.

Every wrapper reads it on each call (:func:`disabled`), so that setting it in
a running process takes effect at once; :func:`cached_tts.enable` reads it too.
"""

from __future__ import annotations

import os

__all__ = ["DISABLE_ENV", "disabled"]

#: Set to ``1`` to bypass every cache (for debugging).
DISABLE_ENV = "CACHED_TTS_DISABLE"


def disabled() -> bool:
    """Whether ``$CACHED_TTS_DISABLE`` is ``1`` now.

    Read on every call, so setting it in a running notebook takes effect; read
    from ``os.environ``'s own mapping where it has one, since ``os.environ.get``
    costs about a microsecond, a noticeable part of a hit.

    >>> os.environ[DISABLE_ENV] = "1"
    >>> disabled()
    True
    >>> del os.environ[DISABLE_ENV]
    >>> disabled()
    False
    """
    data = getattr(os.environ, "_data", None)
    if data is None:  # os.environ replaced by a plain mapping
        return os.environ.get(DISABLE_ENV) == "1"
    return bool(data.get(_DISABLE_KEY) == _DISABLED_VALUE)


# How os.environ keeps the name and the value in its mapping (bytes on POSIX).
_DISABLE_KEY = os.environ.encodekey(DISABLE_ENV)
_DISABLED_VALUE = os.environ.encodevalue("1")
