"""How a cache, its stats and its entries look: in IPython, Jupyter and the command line.

``cached-tts ls`` and ``%tts_cache ls`` print the same table, from
:func:`entry_table`; ``print(stats)``, IPython and the command line print the
same stats table, from :func:`stats_text`.

>>> from cached_tts._cache.stats import CacheStats
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cached_tts._cache.stats import CacheStats
    from cached_tts._entries.format import EntryInfo
    from cached_tts._tiers.disk import ScannedEntry

__all__ = [
    "EntryRow",
    "entry_table",
    "format_bytes",
    "format_table",
    "plural",
    "stats_html",
    "stats_text",
]

_THOUSAND = 1000

#: How many hex digits of a digest ``ls`` shows; ``rm`` takes any unique prefix.
SHORT_HASH = 12


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


def plural(count: int, one: str, many: str | None = None) -> str:
    """``count`` and the noun that agrees with it.

    >>> plural(1, "entry", "entries"), plural(2, "entry", "entries"), plural(0, "voice")
    ('1 entry', '2 entries', '0 voices')
    """
    return f"{count} {one if count == 1 else (many or one + 's')}"


def format_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, right: Iterable[int] = ()
) -> list[str]:
    """Aligned columns under ``header``; the columns in ``right`` (numbers) align right.

    The last column is left ragged, so a long path does not widen the others.

    >>> for line in format_table(("NAME", "SIZE", "NOTE"), [("a", "1 B", "x"), ("bb", "10 B", "")],
    ...                          right={1}):
    ...     print(repr(line))
    'NAME  SIZE  NOTE'
    'a      1 B  x'
    'bb    10 B'
    """
    table = [tuple(header), *(tuple(row) for row in rows)]
    right = set(right)
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = []
    for row in table:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


# -- stats ------------------------------------------------------------------------


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

    >>> from cached_tts._cache.stats import CacheStats, TierStats
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

    >>> from cached_tts._cache.stats import CacheStats
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

    >>> from cached_tts._cache.stats import CacheStats
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


# -- entries ----------------------------------------------------------------------


@dataclass(frozen=True)
class EntryRow:
    """One entry as ``ls`` lists it: on disk, or only in a shared tier.

    ``digest`` is the entry's name: its key's digest, and on disk its file's
    stem. ``in_shared`` says whether a shared tier (Redis, a bucket) holds it
    too; ``None`` when none is in use.
    """

    digest: str
    info: EntryInfo | None
    size: int
    damage: str | None
    last_used: float | None = None
    on_disk: bool = True
    in_shared: bool | None = None
    file: Path | None = None

    @classmethod
    def from_scanned(cls, item: ScannedEntry, shared: set[str] | None = None) -> EntryRow:
        """A disk entry; ``shared`` holds the digests the shared tiers have, when in use."""
        digest = item.file.path.stem
        also = None if shared is None else digest in shared
        return cls(
            digest,
            item.info,
            item.file.size,
            item.damage,
            item.file.last_used,
            on_disk=True,
            in_shared=also,
            file=item.file.path,
        )


def _local_time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")


def _model_cell(weights: str, *, long: bool) -> str:
    if long:
        return weights
    kind, _, digest = weights.rpartition(":")
    return f"{kind}:{digest[:SHORT_HASH]}" if kind else digest[:SHORT_HASH]


def _entry_cells(row: EntryRow, *, long: bool, with_shared: bool) -> tuple[str, ...]:
    info = row.info
    cells: tuple[str, ...] = (row.digest if long else row.digest[:SHORT_HASH],)
    if long:
        cells += (info.key.content if info else "",)
    cells += (
        _model_cell(info.key.weights, long=long) if info else "",
        format_bytes(row.size),
        _local_time(info.created) if info else "",
        _local_time(row.last_used) if row.last_used is not None else "",
    )
    if with_shared:
        cells += ("only" if not row.on_disk else ("yes" if row.in_shared else "no"),)
    if info is not None and row.damage is None:
        return (*cells, info.source)
    fix = "verify --fix" if row.on_disk else "verify --fix --remote URL"
    return (*cells, f"(damaged: {row.damage}; run `cached-tts {fix}`)")


def entry_table(rows: Iterable[EntryRow], *, long: bool = False) -> list[str]:
    """The lines of ``ls``: a header, then one line per entry.

    HASH is the entry's own digest (its file name), which ``rm`` takes; with
    ``long``, digests are whole and a CLIP HASH column (the clip's sha256) is added.
    """
    rows = list(rows)
    with_shared = any(row.in_shared is not None for row in rows)
    header: tuple[str, ...] = ("HASH",) + (("CLIP HASH",) if long else ())
    header += ("MODEL", "SIZE", "CREATED", "LAST USED")
    header += ("SHARED", "SOURCE") if with_shared else ("SOURCE",)
    size_column = header.index("SIZE")
    cells = [_entry_cells(row, long=long, with_shared=with_shared) for row in rows]
    return format_table(header, cells, right={size_column})
