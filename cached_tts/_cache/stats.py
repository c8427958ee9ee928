"""What a cache has done and holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CacheStats", "TierStats"]


@dataclass(frozen=True)
class TierStats:
    """What one shared tier (Redis, a bucket...) has done for one cache object.

    >>> TierStats("s3://voices/prod", hits=12, errors=0).hits
    12
    """

    #: Where the tier is (a URL, never with a password).
    name: str
    #: Lookups it served, and calls to it that failed or timed out.
    hits: int
    errors: int


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a :class:`~cached_tts.ConditionalCache`'s counters.

    Hits and misses count lookups by this cache object. ``seconds_saved`` adds
    up, over every hit, how long the entry took to prepare when it was made.

    >>> stats = CacheStats(memory_hits=3, disk_hits=1, misses=1, entries=2,
    ...                    memory_bytes=330_000, disk_entries=2, disk_bytes=331_000,
    ...                    seconds_saved=9.2)
    >>> stats.hits, stats.hit_rate
    (4, 0.8)
    """

    memory_hits: int
    disk_hits: int
    misses: int
    entries: int
    memory_bytes: int
    disk_entries: int
    disk_bytes: int
    seconds_saved: float
    #: Lookups served by the shared tiers (Redis, object stores), and their
    #: calls that failed: totals over ``remote_tiers``.
    remote_hits: int = 0
    remote_errors: int = 0
    #: Whether the cache has a disk tier; a memory-only cache shows no disk column.
    disk_tier: bool = True
    #: Hits and errors per shared tier, in lookup order.
    remote_tiers: tuple[TierStats, ...] = ()

    @property
    def hits(self) -> int:
        """Lookups served without preparing the voice."""
        return self.memory_hits + self.disk_hits + self.remote_hits

    @property
    def hit_rate(self) -> float:
        """Hits over all lookups; 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def __str__(self) -> str:
        """The same table as IPython shows; ``repr()`` keeps every field.

        >>> print(CacheStats(1, 0, 1, 1, 500, 1, 600, 2.25))
                    memory       disk
        entries          1          1
        bytes        500 B      600 B
        hits             1          0
        misses: 1, hit rate: 50%, seconds saved: 2.2
        """
        from cached_tts._cache.display import stats_text

        return stats_text(self)

    def _repr_html_(self) -> str:
        from cached_tts._cache.display import stats_html

        return stats_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        from cached_tts._cache.display import stats_text

        printer.text(repr(self) if cycle else stats_text(self))
