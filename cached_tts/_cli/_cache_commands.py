"""Subcommands that read or tidy a cache folder: ls, stats, verify, prune, clear.

None of them loads a model: they read entry headers and file times only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cached_tts._cli._options import (
    CommandError,
    add_cache_dir,
    cache_dir_of,
    format_bytes,
    format_time,
    iso_time,
    parse_duration,
    parse_size,
)
from cached_tts._exceptions import DamagedEntryError
from cached_tts._format import EntryInfo, decode
from cached_tts._store import DiskStore, StoredFile

__all__ = ["add_parsers", "scan"]

_SHORT = 12


@dataclass(frozen=True)
class Scanned:
    """One entry file, read and checked: ``info`` or the reason it is damaged."""

    file: StoredFile
    info: EntryInfo | None
    damage: str | None


def scan(store: DiskStore) -> list[Scanned]:
    """Every entry file in ``store``, verified (checksum, and key against file name)."""
    scanned = []
    for stored in store.files():
        try:
            info = decode(stored.path.read_bytes(), None)[1]
        except FileNotFoundError:
            continue  # removed by someone else meanwhile
        except DamagedEntryError as exc:
            scanned.append(Scanned(stored, None, str(exc)))
            continue
        if stored.path.stem != info.key.digest:
            scanned.append(Scanned(stored, info, "the file name does not match the stored key"))
            continue
        scanned.append(Scanned(stored, info, None))
    return scanned


def _store(args: argparse.Namespace) -> DiskStore:
    return DiskStore(cache_dir_of(args))


# -- ls -------------------------------------------------------------------------


def _row(item: Scanned) -> dict[str, Any]:
    info = item.info
    return {
        "content_hash": info.key.content if info else None,
        "source": info.source if info else None,
        "model_fingerprint": info.key.weights if info else None,
        "size": item.file.size,
        "created": iso_time(info.created) if info else None,
        "last_used": iso_time(item.file.last_used),
        "file": str(item.file.path),
        "damaged": item.damage,
    }


def run_ls(args: argparse.Namespace) -> int:
    """List entries, most recently used first."""
    items = sorted(scan(_store(args)), key=lambda s: -s.file.last_used)
    if args.json:
        print(json.dumps([_row(item) for item in items], indent=2))
        return 0
    if not items:
        print(f"No entries in {cache_dir_of(args)}.")
        return 0
    header = ("HASH", "MODEL", "SIZE", "CREATED", "LAST USED", "SOURCE")
    rows = [header]
    for item in items:
        info = item.info
        fingerprint = info.key.weights if info else ""
        kind, _, digest = fingerprint.rpartition(":")
        rows.append(
            (
                info.key.content[:_SHORT] if info else "(damaged)",
                f"{kind}:{digest[:_SHORT]}" if kind else digest[:_SHORT],
                format_bytes(item.file.size),
                format_time(info.created) if info else "",
                format_time(item.file.last_used),
                info.source if info else f"{item.damage}; run `cached-tts verify --fix`",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return 0


# -- stats ----------------------------------------------------------------------


def run_stats(args: argparse.Namespace) -> int:
    """Print what the folder holds; hit counters live in each process."""
    items = scan(_store(args))
    healthy = [s for s in items if s.damage is None and s.info is not None]
    disk_bytes = sum(s.file.size for s in items)
    figures = {
        "cache_dir": str(cache_dir_of(args)),
        "entries": len(items),
        "damaged_entries": len(items) - len(healthy),
        "disk_bytes": disk_bytes,
        "memory_bytes": 0,
        "seconds_to_rebuild": round(sum(s.info.prepare_seconds for s in healthy if s.info), 3),
        "note": (
            "hits and misses are counted per process (ConditionalCache.stats()); "
            "the memory tier belongs to each process, so this command's is empty"
        ),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"Cache folder:        {figures['cache_dir']}")
    print(f"Entries:             {figures['entries']} ({figures['damaged_entries']} damaged)")
    print(f"Disk tier:           {format_bytes(disk_bytes)}")
    print("Memory tier:         per process (empty in this command)")
    print(f"Seconds to rebuild:  {figures['seconds_to_rebuild']:.1f} s of preparation stored")
    print(
        "Hits and misses are counted per process: read them from ConditionalCache.stats() "
        "in the process that serves."
    )
    return 0


# -- verify ---------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> int:
    """Check every entry; with --fix remove the damaged ones."""
    items = scan(_store(args))
    damaged = [s for s in items if s.damage is not None]
    remaining = 0
    for item in damaged:
        if args.fix:
            item.file.path.unlink(missing_ok=True)
            print(f"removed {item.file.path}: {item.damage}")
        else:
            print(f"damaged {item.file.path}: {item.damage}")
            remaining += 1
    print(f"{len(items)} entries checked, {len(damaged)} damaged" + (", removed" * bool(args.fix)))
    if remaining:
        raise CommandError(
            f"{remaining} damaged entries remain; run `cached-tts verify --fix` to remove "
            "them (they would be recomputed on use anyway)"
        )
    return 0


# -- prune and clear ------------------------------------------------------------


def run_prune(args: argparse.Namespace) -> int:
    """Remove entries unused for a while, then the least recently used over a budget."""
    if args.older_than is None and args.max_bytes is None:
        args.usage_error("give --older-than, --max-bytes or both")
    store = _store(args)
    removed = 0
    if args.older_than is not None:
        cutoff = time.time() - args.older_than
        for stored in store.files():
            if stored.last_used < cutoff:
                stored.path.unlink(missing_ok=True)
                removed += 1
    if args.max_bytes is not None:
        removed += store.evict(args.max_bytes)
    left = store.files()
    print(
        f"Removed {removed} entries; {len(left)} left, "
        f"{format_bytes(sum(f.size for f in left))} in {store.directory}."
    )
    return 0


def run_clear(args: argparse.Namespace) -> int:
    """Remove every entry, after asking (or with --yes)."""
    store = _store(args)
    count = len(store.files())
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError(
                "refusing to clear without confirmation: stdin is not a terminal; "
                "pass --yes to clear anyway"
            )
        answer = input(f"Remove all {count} entries in {store.directory}? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("Nothing removed.")
            return 0
    store.clear()
    for memo in Path(store.hashes_dir).glob("*.json"):
        memo.unlink(missing_ok=True)
    print(f"Removed {count} entries from {store.directory}.")
    return 0


def add_parsers(commands: Any) -> None:
    """Register ls, stats, verify, prune and clear."""
    ls = commands.add_parser(
        "ls", help="list cached voices", description="One row per cached voice, newest use first."
    )
    ls.add_argument("--json", action="store_true", help="print a JSON list of objects")
    ls.set_defaults(run=run_ls)

    stats = commands.add_parser(
        "stats",
        help="what the cache folder holds",
        description="Entries, bytes per tier and the seconds of preparation stored.",
    )
    stats.add_argument("--json", action="store_true", help="print a JSON object")
    stats.set_defaults(run=run_stats)

    verify = commands.add_parser(
        "verify",
        help="check every entry's checksum and key",
        description="Exit 1 if damaged entries remain.",
    )
    verify.add_argument("--fix", action="store_true", help="remove damaged entries")
    verify.set_defaults(run=run_verify)

    prune = commands.add_parser(
        "prune",
        help="remove old or least recently used entries",
        description="Remove entries unused for --older-than, then the least recently used "
        "until the folder fits --max-bytes.",
    )
    prune.add_argument("--max-bytes", type=parse_size, help="e.g. 500000000, 200MB, 1GiB")
    prune.add_argument("--older-than", type=parse_duration, help="e.g. 30d, 12h, 90m")
    prune.set_defaults(run=run_prune, usage_error=prune.error)

    clear = commands.add_parser(
        "clear",
        help="remove every entry",
        description="Asks first on a terminal; refuses without --yes when stdin is not one.",
    )
    clear.add_argument("--yes", action="store_true", help="do not ask")
    clear.set_defaults(run=run_clear)

    for parser in (ls, stats, verify, prune, clear):
        add_cache_dir(parser)
