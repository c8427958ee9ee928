"""How a cache and its stats look in IPython, Jupyter and ``%tts_cache ls``.

>>> from cached_tts._stats import CacheStats
>>> stats = CacheStats(memory_hits=3, disk_hits=1, misses=1, entries=2,
...                    memory_bytes=330_000, disk_entries=2, disk_bytes=331_000,
...                    seconds_saved=9.2)
>>> print(stats_text(stats))
            memory       disk
entries          2          2
bytes    322.3 KiB  323.2 KiB
hits             3          1
misses: 1, hit rate: 80%, seconds saved: 9.2
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable

from cached_tts._exceptions import DamagedEntryError
from cached_tts._format import decode
from cached_tts._stats import CacheStats
from cached_tts._store import StoredFile

__all__ = ["entry_lines", "human_bytes", "stats_html", "stats_text"]

_KIB = 1024.0


def human_bytes(size: float) -> str:
    """A byte count for people.

    >>> human_bytes(512), human_bytes(165_000), human_bytes(3 * 1024**3)
    ('512 B', '161.1 KiB', '3.0 GiB')
    """
    if size < _KIB:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= _KIB
        if size < _KIB or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def _rows(stats: CacheStats) -> list[tuple[str, str, str]]:
    return [
        ("entries", str(stats.entries), str(stats.disk_entries)),
        ("bytes", human_bytes(stats.memory_bytes), human_bytes(stats.disk_bytes)),
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


def entry_lines(files: Iterable[StoredFile]) -> list[str]:
    """One line per entry file: short key digest, source clip, size, last use."""
    lines = []
    for stored in files:
        try:
            source = decode(stored.path.read_bytes(), None)[1].source or "?"
        except FileNotFoundError:
            continue  # evicted or cleared meanwhile
        except DamagedEntryError:
            source = "(damaged: recomputed on next use)"
        used = dt.datetime.fromtimestamp(stored.last_used).astimezone()
        lines.append(
            f"{stored.path.stem[:12]}  {source}  {human_bytes(stored.size)}  "
            f"{used:%Y-%m-%d %H:%M:%S}"
        )
    return lines
