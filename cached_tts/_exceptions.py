"""The exceptions cached-tts raises.

The hierarchy::

    CachedTTSError
    ├── ContentChangedError     a clip (or checkpoint file) kept changing while it was
    │                           read, so no hash names its bytes (a cached model then
    │                           prepares that call uncached)
    ├── DamagedEntryError       a stored entry failed its checks (never reaches users
    │                           of the cache: the entry is dropped and recomputed)
    └── WeightsUnavailableError (also a FileNotFoundError)
                                 Chatterbox weights could not be found or downloaded

Errors about the reference clip are the built-in ones a user expects from a
file API: ``FileNotFoundError`` for a missing clip and ``IsADirectoryError``
for a folder, both naming the path.
"""

from __future__ import annotations

__all__ = [
    "CachedTTSError",
    "ContentChangedError",
    "DamagedEntryError",
    "WeightsUnavailableError",
]


class CachedTTSError(Exception):
    """Base class of every error that cached-tts itself raises."""


class ContentChangedError(CachedTTSError):
    """A file or stream changed while it was read: no hash names what it holds."""


class DamagedEntryError(CachedTTSError):
    """A stored entry is truncated, altered, or stored under the wrong key."""


class WeightsUnavailableError(CachedTTSError, FileNotFoundError):
    """Chatterbox weights are missing locally and could not be downloaded."""
