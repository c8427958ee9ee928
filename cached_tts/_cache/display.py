"""How sizes, counts and a cache's entries read to a person.

``cached-tts ls`` and ``%tts_cache ls`` print the same table, from
:func:`entry_table`; the stats table is :mod:`cached_tts._cache.stats`'s.

>>> format_bytes(331_000), plural(2, "entry", "entries")
('331.0 KB', '2 entries')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cached_tts._entries.format import EntryInfo
    from cached_tts._tiers.disk.store import ScannedEntry

__all__ = [
    "EntryRow",
    "entry_table",
    "format_bytes",
    "format_table",
    "plural",
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
