"""How a cache and its stats look in IPython, Jupyter and ``%tts_cache ls``.

>>> from cached_tts._stats import CacheStats
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

import datetime as dt
import html
from collections.abc import Iterable

from cached_tts._stats import CacheStats
from cached_tts._store import ScannedEntry

__all__ = ["entry_lines", "format_bytes", "stats_html", "stats_text"]

_THOUSAND = 1000


def format_bytes(count: int) -> str:
    """A byte count for people.

    >>> format_bytes(512), format_bytes(85_300), format_bytes(3_400_000)
    ('512 B', '85.3 KB', '3.4 MB')
    """
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < _THOUSAND or unit == "GB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= _THOUSAND
    raise AssertionError  # pragma: no cover - the loop always returns


def _rows(stats: CacheStats) -> list[tuple[str, str, str]]:
    return [
        ("entries", str(stats.entries), str(stats.disk_entries)),
        ("bytes", format_bytes(stats.memory_bytes), format_bytes(stats.disk_bytes)),
        ("hits", str(stats.memory_hits), str(stats.disk_hits)),
    ]


def _summary(stats: CacheStats) -> str:
    remote = ""
    if stats.remote_hits or stats.remote_errors:
        remote = f", redis hits: {stats.remote_hits}, redis errors: {stats.remote_errors}"
    return (
        f"misses: {stats.misses}{remote}, hit rate: {stats.hit_rate:.0%}, "
        f"seconds saved: {stats.seconds_saved:.1f}"
    )


def stats_text(stats: CacheStats, title: str = "") -> str:
    """A plain-text table of ``stats``, under ``title`` if given."""
    lines = [title] if title else []
    lines.append(f"{'':7}{'memory':>11}{'disk':>11}")
    lines += [f"{name:7}{memory:>11}{disk:>11}" for name, memory, disk in _rows(stats)]
    lines.append(_summary(stats))
    return "\n".join(lines)


def stats_html(stats: CacheStats, title: str = "") -> str:
    """A small HTML table of ``stats``, under ``title`` if given.

    >>> "<td>2</td>" in stats_html(CacheStats(0, 0, 0, 2, 0, 0, 0, 0.0))
    True
    """
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    body = "".join(
        f"<tr><th>{name}</th><td>{html.escape(memory)}</td><td>{html.escape(disk)}</td></tr>"
        for name, memory, disk in _rows(stats)
    )
    return (
        f"<table>{caption}<tr><th></th><th>memory</th><th>disk</th></tr>{body}"
        f'<tr><td colspan="3">{html.escape(_summary(stats))}</td></tr></table>'
    )


def entry_lines(scanned: Iterable[ScannedEntry]) -> list[str]:
    """One line per entry file: short key digest, source clip, size, last use."""
    lines = []
    for item in scanned:
        source = "(damaged: recomputed on next use)"
        if item.damage is None and item.info is not None:
            source = item.info.source or "?"
        used = dt.datetime.fromtimestamp(item.file.last_used).astimezone()
        lines.append(
            f"{item.file.path.stem[:12]}  {source}  {format_bytes(item.file.size)}  "
            f"{used:%Y-%m-%d %H:%M:%S}"
        )
    return lines
