"""Subcommands that read a cache folder (ls, stats); registers verify, prune, clear and rm too.

None of them loads a model: they read entry headers and file times only, and
none imports torch's model stack.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from cached_tts._cli.options import (
    add_cache_dir,
    add_remote,
    cache_dir_of,
    format_bytes,
    iso_time,
    parse_duration,
    parse_size,
    plural,
    remote_of,
    store_of,
)

if TYPE_CHECKING:
    from cached_tts._cache.display import EntryRow

__all__ = ["add_parsers"]


# -- ls -------------------------------------------------------------------------


def _row(item: EntryRow) -> dict[str, Any]:
    info = item.info
    return {
        "hash": item.digest,
        "content_hash": info.key.content if info else None,
        "source": info.source if info else None,
        "model_fingerprint": info.key.weights if info else None,
        "size": item.size,
        "created": iso_time(info.created) if info else None,
        "last_used": iso_time(item.last_used) if item.last_used is not None else None,
        "file": str(item.file) if item.file else None,
        "damaged": item.damage,
        "on_disk": item.on_disk,
        "in_shared": item.in_shared,
        # Deprecated: the same value under its first name, from before buckets.
        "in_redis": item.in_shared,
    }


def _listing(args: argparse.Namespace) -> tuple[list[EntryRow], list[str]]:
    """Disk entries, most recently used first, then those only in shared tiers, newest first.

    Also where each shared tier is, for messages.
    """
    from cached_tts._cache.display import EntryRow
    from cached_tts._cli.fleet import fleet_tiers, read_values

    items = sorted(store_of(args).scan(), key=lambda s: -s.file.last_used)
    with fleet_tiers(remote_of(args)) as tiers:
        if not tiers:
            return [EntryRow.from_scanned(item) for item in items], []
        shared: set[str] = set()
        on_disk = {item.file.path.stem for item in items}
        only = []
        for tier in tiers:
            # Sizes from the listing: a read stops early on a value over the size limit.
            held = {stored.digest: stored.size for stored in tier.scan()}
            only += [
                EntryRow(v.digest, v.info, held[v.digest], v.damage, on_disk=False, in_shared=True)
                for v in read_values(tier, sorted(held.keys() - on_disk - shared))
            ]
            shared |= held.keys()
    only.sort(key=lambda row: -(row.info.created if row.info else 0.0))
    rows = [EntryRow.from_scanned(item, shared) for item in items] + only
    return rows, [tier.where for tier in tiers]


def run_ls(args: argparse.Namespace) -> int:
    """List entries, most recently used first; with --remote, say which are in a shared tier."""
    from cached_tts._cache.display import entry_table

    items, wheres = _listing(args)
    if args.json:
        print(json.dumps([_row(item) for item in items], indent=2))
        return 0
    if not items:
        also = "".join(f" or in {where}" for where in wheres)
        print(f"No entries in {cache_dir_of(args)}{also}.")
        return 0
    print("\n".join(entry_table(items, long=args.long)))
    return 0


# -- stats ----------------------------------------------------------------------


def _tier_figures(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    """Entries and bytes in each shared tier; ``None`` without --remote."""
    from cached_tts._cli.fleet import fleet_tiers

    with fleet_tiers(remote_of(args)) as tiers:
        if not tiers:
            return None
        figures = []
        for tier in tiers:
            sizes = [stored.size for stored in tier.scan()]
            figures.append(
                {
                    "url": tier.name,
                    "where": tier.describe(),
                    "label": tier.label,
                    "entries": len(sizes),
                    "bytes": sum(sizes),
                }
            )
        return figures


def _share(used: int, cap: int) -> str:
    """``used`` against ``cap``, as ``ccache -s`` shows it.

    >>> _share(250_000_000, 1_000_000_000)
    '250.0 MB of 1.0 GB (25%)'
    """
    return f"{format_bytes(used)} of {format_bytes(cap)} ({used / cap:.0%})" if cap else "0 B"


def run_stats(args: argparse.Namespace) -> int:
    """Print what the folder (and with --remote, each shared tier) holds; hits live in processes."""
    items = store_of(args).scan()
    healthy = [s for s in items if s.damage is None and s.info is not None]
    disk_bytes = sum(s.file.size for s in items)
    remote = _tier_figures(args)
    figures = {
        "cache_dir": str(cache_dir_of(args)),
        "entries": len(items),
        "damaged_entries": len(items) - len(healthy),
        "disk_bytes": disk_bytes,
        "max_disk_bytes": args.max_bytes,
        "memory_bytes": 0,
        "seconds_to_rebuild": round(sum(s.info.prepare_seconds for s in healthy if s.info), 3),
        "remote": remote,
        "note": (
            "hits and misses are counted per process (ConditionalCache.stats()); "
            "the memory tier belongs to each process, so this command's is empty"
        ),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    damaged = figures["damaged_entries"]
    print(f"Cache folder:        {figures['cache_dir']}")
    print(f"Entries:             {len(items)} ({damaged} damaged)")
    print(f"Disk tier:           {_share(disk_bytes, args.max_bytes)} of max_disk_bytes")
    print("Memory tier:         per process (empty in this command)")
    for line in _tier_lines(remote):
        print(line)
    print(f"Seconds to rebuild:  {figures['seconds_to_rebuild']:.1f} s of preparation stored")
    print(
        "Hits and misses are counted per process: read them from ConditionalCache.stats() "
        "in the process that serves."
    )
    return 0


def _tier_lines(remote: list[dict[str, Any]] | None) -> list[str]:
    from cached_tts._tiers.redis.tier import REMOTE_ENV

    if remote is None:
        return [f"{'Shared tiers:':<21}not in use (--remote URL,... or ${REMOTE_ENV})"]
    return [
        f"{tier['label'] + ' tier:':<20} {plural(tier['entries'], 'entry', 'entries')}, "
        f"{format_bytes(tier['bytes'])} in {tier['where']}"
        for tier in remote
    ]


def add_parsers(commands: Any) -> None:
    """Register ls, stats, verify, prune, clear and rm."""
    from cached_tts._cli.remove import add_parser as add_rm
    from cached_tts._cli.tidy_commands import run_clear, run_prune, run_verify

    ls = commands.add_parser(
        "ls",
        help="list cached voices",
        description="One row per entry, most recently used first. HASH is the entry's name "
        "(what `rm` takes); --long adds the clip's content hash and shows whole digests. "
        "With --remote, a SHARED column (is the entry also in a shared tier?) and rows for "
        "entries only there.",
    )
    ls.add_argument("--json", action="store_true", help="print a JSON list of objects")
    ls.add_argument("-l", "--long", action="store_true", help="whole digests and the clip hash")
    ls.set_defaults(run=run_ls)
    add_remote(ls, use="; lists its entries too")

    from cached_tts._cache.cache import DEFAULT_MAX_DISK_BYTES

    stats = commands.add_parser(
        "stats",
        help="what the cache folder holds",
        description="Entries, bytes per tier (the disk against max_disk_bytes) and the "
        "seconds of preparation stored.",
    )
    stats.add_argument("--json", action="store_true", help="print a JSON object")
    stats.add_argument(
        "--max-bytes",
        type=parse_size,
        default=DEFAULT_MAX_DISK_BYTES,
        help="the max_disk_bytes your processes use, to show the folder against "
        f"(default {format_bytes(DEFAULT_MAX_DISK_BYTES)}, the library's)",
    )
    stats.set_defaults(run=run_stats)
    add_remote(stats, use="; counts its entries and bytes too")

    verify = commands.add_parser(
        "verify",
        help="check every entry's checksum and key",
        description="Exit 1 if damaged entries remain.",
    )
    verify.add_argument("--fix", action="store_true", help="remove damaged entries")
    verify.set_defaults(run=run_verify)
    add_remote(verify, use="; checks (and with --fix removes) its damaged values too")

    prune = commands.add_parser(
        "prune",
        help="remove old or least recently used entries",
        description="Remove entries unused for --older-than, then the least recently used "
        "until the folder fits --max-bytes.",
    )
    prune.add_argument(
        "--max-bytes", type=parse_size, help="e.g. 500000000, 200MB, 1GiB (the disk only)"
    )
    prune.add_argument("--older-than", type=parse_duration, help="e.g. 30d, 12h, 90m")
    prune.set_defaults(run=run_prune, usage_error=prune.error)
    add_remote(
        prune,
        from_env=False,
        use="; --older-than also removes its entries created that long ago "
        "(shared tiers keep no last use); --max-bytes applies to the disk only",
    )

    clear = commands.add_parser(
        "clear",
        help="remove every entry",
        description="Asks first on a terminal; refuses without --yes when stdin is not one. "
        "Shared tiers are left alone unless --remote names them.",
    )
    clear.add_argument("--yes", action="store_true", help="do not ask")
    clear.set_defaults(run=run_clear)
    add_remote(clear, from_env=False, use="; also removes our entries from them")

    rm = add_rm(commands)
    for parser in (ls, stats, verify, prune, clear, rm):
        add_cache_dir(parser)
