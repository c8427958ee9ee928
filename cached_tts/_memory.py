"""The memory tier: a thread-safe ``cachetools`` LRU bounded in bytes."""

from __future__ import annotations

import threading

from cachetools import LRUCache

from cached_tts._entry import Entry
from cached_tts._forksafe import renew_after_fork

__all__ = ["MemoryTier"]


def _entry_bytes(entry: Entry) -> int:
    return entry.nbytes


class MemoryTier:
    """Entries by key digest, least recently used evicted past ``max_bytes``.

    >>> import torch
    >>> tier = MemoryTier(max_bytes=1024)
    >>> tier.put("k", Entry({"ref.embedding": torch.zeros(1, 192)}))
    True
    >>> tier.nbytes, len(tier)
    (768, 1)
    >>> tier.put("big", Entry({"ref.embedding": torch.zeros(1, 512)}))  # over budget
    False
    """

    def __init__(self, max_bytes: int) -> None:
        self._lru: LRUCache[str, Entry] = LRUCache(maxsize=max_bytes, getsizeof=_entry_bytes)
        self._lock = threading.Lock()
        renew_after_fork(self, _lock=threading.Lock)

    def get(self, digest: str) -> Entry | None:
        """The entry for ``digest``, marked as just used; ``None`` if absent."""
        with self._lock:
            return self._lru.get(digest)

    def put(self, digest: str, entry: Entry) -> bool:
        """Keep ``entry``; returns ``False`` when it alone exceeds the budget."""
        with self._lock:
            if entry.nbytes > self._lru.maxsize:
                return False
            self._lru[digest] = entry
            return True

    def discard(self, digest: str) -> bool:
        """Drop the entry for ``digest``; whether there was one."""
        with self._lock:
            return self._lru.pop(digest, None) is not None

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._lru.clear()

    @property
    def nbytes(self) -> int:
        """Bytes held, as the sum of the entries' tensor sizes."""
        with self._lock:
            return int(self._lru.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    def __contains__(self, digest: object) -> bool:
        """Whether ``digest`` is held, without marking it as used."""
        with self._lock:
            return digest in self._lru
