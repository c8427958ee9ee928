"""What a cache has done and holds, and how that reads.

>>> stats = CacheStats(memory_hits=3, disk_hits=1, misses=1, entries=2,
...                    memory_bytes=330_000, disk_entries=2, disk_bytes=331_000,
...                    seconds_saved=9.2)
>>> print(stats_text(stats))
            memory       disk
entries          2          2
bytes     330.0 KB   331.0 KB
hits             3          1
misses: 1, hit rate: 80%, seconds saved: 9.2
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass
from typing import Any

from cached_tts._cache.display import format_bytes, plural
from cached_tts._forksafe import renew_after_fork
from cached_tts._tiers.stats import TierStats

__all__ = ["CacheStats", "HitCounts", "TierStats", "stats_html", "stats_text"]


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
        return stats_text(self)

    def _repr_html_(self) -> str:
        return stats_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self) if cycle else stats_text(self))


class HitCounts:
    """A cache's lookups by the tier that served them, and the seconds its hits saved.

    >>> counts = HitCounts()
    >>> counts.add("disk", 2.5)
    >>> counts.add("miss", 0.0)
    >>> counts.misses, counts.disk_hits, counts.seconds_saved
    (1, 1, 2.5)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.memory_hits = self.disk_hits = self.remote_hits = self.misses = 0
        self.seconds_saved = 0.0
        renew_after_fork(self, _lock=threading.Lock)

    def add(self, tier: str, prepare_seconds: float) -> None:
        """Count a lookup by the tier that served it ("miss": none); hits add the seconds saved."""
        with self._lock:
            if tier == "miss":
                self.misses += 1
                return
            if tier == "memory":
                self.memory_hits += 1
            elif tier == "remote":
                self.remote_hits += 1
            else:
                self.disk_hits += 1
            self.seconds_saved += prepare_seconds

    def snapshot(
        self,
        *,
        entries: int,
        memory_bytes: int,
        disk_entries: int,
        disk_bytes: int,
        remote_errors: int,
        remote_tiers: tuple[TierStats, ...],
        disk_tier: bool,
    ) -> CacheStats:
        """These counts, read together, with what the tiers hold now."""
        with self._lock:
            return CacheStats(
                memory_hits=self.memory_hits,
                disk_hits=self.disk_hits,
                misses=self.misses,
                entries=entries,
                memory_bytes=memory_bytes,
                disk_entries=disk_entries,
                disk_bytes=disk_bytes,
                seconds_saved=self.seconds_saved,
                remote_hits=self.remote_hits,
                remote_errors=remote_errors,
                remote_tiers=remote_tiers,
                disk_tier=disk_tier,
            )


# -- how stats read ----------------------------------------------------------------


def _columns(stats: CacheStats) -> tuple[str, ...]:
    return ("memory", "disk") if stats.disk_tier else ("memory",)


def _rows(stats: CacheStats) -> list[tuple[str, ...]]:
    rows = [
        ("entries", str(stats.entries), str(stats.disk_entries)),
        ("bytes", format_bytes(stats.memory_bytes), format_bytes(stats.disk_bytes)),
        ("hits", str(stats.memory_hits), str(stats.disk_hits)),
    ]
    return [row[: 1 + len(_columns(stats))] for row in rows]


def _summary(stats: CacheStats) -> str:
    remote = ""
    if stats.remote_hits or stats.remote_errors:
        remote = f", remote hits: {stats.remote_hits}, remote errors: {stats.remote_errors}"
    return (
        f"misses: {stats.misses}{remote}, hit rate: {stats.hit_rate:.0%}, "
        f"seconds saved: {stats.seconds_saved:.1f}"
    )


def _tier_lines(stats: CacheStats) -> list[str]:
    """One line per shared tier, in lookup order, once any of them did something.

    >>> from cached_tts._tiers.stats import TierStats
    >>> tiers = (TierStats("redis://cache:6379/0", 0, 2), TierStats("s3://voices/prod", 3, 0))
    >>> _tier_lines(CacheStats(0, 0, 0, 0, 0, 0, 0, 0.0, remote_hits=3, remote_tiers=tiers))
    ['  redis://cache:6379/0: 0 hits, 2 errors', '  s3://voices/prod: 3 hits, 0 errors']
    """
    if not (stats.remote_hits or stats.remote_errors):
        return []
    return [
        f"  {tier.name}: {plural(tier.hits, 'hit')}, {plural(tier.errors, 'error')}"
        for tier in stats.remote_tiers
    ]


def stats_text(stats: CacheStats, title: str = "") -> str:
    """A plain-text table of ``stats``, under ``title`` if given.

    A memory-only cache shows only its memory column:

    >>> print(stats_text(CacheStats(0, 0, 1, 1, 500, 0, 0, 0.0, disk_tier=False)))
                memory
    entries          1
    bytes        500 B
    hits             0
    misses: 1, hit rate: 0%, seconds saved: 0.0
    """
    lines = [title] if title else []
    columns = _columns(stats)
    lines.append(" " * 7 + "".join(f"{name:>11}" for name in columns))
    lines += [f"{row[0]:7}" + "".join(f"{cell:>11}" for cell in row[1:]) for row in _rows(stats)]
    lines.append(_summary(stats))
    lines += _tier_lines(stats)
    return "\n".join(lines)


def stats_html(stats: CacheStats, title: str = "") -> str:
    """A small HTML table of ``stats``, under ``title`` if given.

    >>> "<td>2</td>" in stats_html(CacheStats(0, 0, 0, 2, 0, 0, 0, 0.0))
    True
    >>> "disk" in stats_html(CacheStats(0, 0, 0, 2, 0, 0, 0, 0.0, disk_tier=False))
    False
    """
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    summary = "<br>".join(html.escape(line) for line in [_summary(stats), *_tier_lines(stats)])
    columns = _columns(stats)
    head = "".join(f"<th>{name}</th>" for name in columns)
    body = "".join(
        f"<tr><th>{row[0]}</th>" + "".join(f"<td>{html.escape(c)}</td>" for c in row[1:]) + "</tr>"
        for row in _rows(stats)
    )
    return (
        f"<table>{caption}<tr><th></th>{head}</tr>{body}"
        f'<tr><td colspan="{1 + len(columns)}">{summary}</td></tr></table>'
    )
