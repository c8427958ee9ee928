"""The memory tier: a thread-safe ``cachetools`` LRU bounded in bytes."""

from __future__ import annotations

import threading

from cachetools import Cache, LRUCache

from cached_tts._entries.entry import Entry
from cached_tts._forksafe import renew_after_fork

__all__ = ["MemoryTier"]


def _held_bytes(held: tuple[Entry, str]) -> int:
    return held[0].nbytes


class MemoryTier:
    """Entries by key digest, least recently used evicted past ``max_bytes``.

    Each entry may name the content hash of the clip it was made from, so that
    a voice can be erased from memory by its clip (:meth:`discard_made_from`)
    with no index that outlives the entries.

    >>> import torch
    >>> tier = MemoryTier(max_bytes=1024)
    >>> tier.put("k", Entry({"ref.embedding": torch.zeros(1, 192)}))
    True
    >>> tier.nbytes, len(tier)
    (768, 1)
    >>> tier.put("big", Entry({"ref.embedding": torch.zeros(1, 512)}))  # over budget
    False
    >>> tier.put("v", Entry({"ref.embedding": torch.zeros(1, 4)}), content="c1")
    True
    >>> tier.discard_made_from("c1"), "v" in tier
    (['v'], False)
    """

    def __init__(self, max_bytes: int) -> None:
        self._lru: LRUCache[str, tuple[Entry, str]] = LRUCache(
            maxsize=max_bytes, getsizeof=_held_bytes
        )
        self._lock = threading.Lock()
        renew_after_fork(self, _lock=threading.Lock)

    def get(self, digest: str) -> Entry | None:
        """The entry for ``digest``, marked as just used; ``None`` if absent."""
        with self._lock:
            try:  # a hit is the common case: no membership test first
                held = self._lru[digest]
            except KeyError:
                return None
        return held[0]

    def put(self, digest: str, entry: Entry, *, content: str = "") -> bool:
        """Keep ``entry``, made from the clip hashed ``content``.

        Returns ``False`` when it alone exceeds the budget.
        """
        with self._lock:
            if entry.nbytes > self._lru.maxsize:
                return False
            self._lru[digest] = (entry, content)
            return True

    def discard_made_from(self, content: str) -> list[str]:
        """Drop every entry made from the clip hashed ``content``; their digests."""
        with self._lock:
            # Cache.__getitem__ reads without marking as used, as LRUCache's would.
            digests = [d for d in self._lru if Cache.__getitem__(self._lru, d)[1] == content]
            for digest in digests:
                del self._lru[digest]
        return digests

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
