"""Subcommands that read or tidy a cache folder: ls, stats, verify, prune, clear, rm.

None of them loads a model: they read entry headers and file times only, and
none imports torch's model stack.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from cached_tts._cli._options import (
    CommandError,
    add_cache_dir,
    add_remote,
    cache_dir_of,
    format_bytes,
    format_time,
    iso_time,
    parse_duration,
    parse_size,
    plural,
    remote_of,
    store_of,
)

if TYPE_CHECKING:
    from cached_tts._display import EntryRow
    from cached_tts._remote import RemoteTier
    from cached_tts._store import DiskStore

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
        "in_redis": item.in_redis,
    }


def _listing(args: argparse.Namespace) -> list[EntryRow]:
    """Disk entries, most recently used first, then those only in Redis, newest first."""
    from cached_tts._cli._redis import maybe_redis, read_values
    from cached_tts._display import EntryRow

    items = sorted(store_of(args).scan(), key=lambda s: -s.file.last_used)
    with maybe_redis(remote_of(args)) as tier:
        if tier is None:
            return [EntryRow.from_scanned(item) for item in items]
        in_redis = {digest for digest, _size in tier.scan_entries()}
        on_disk = {item.file.path.stem for item in items}
        only = [
            EntryRow(v.digest, v.info, len(v.data), v.damage, on_disk=False, in_redis=True)
            for v in read_values(tier, sorted(in_redis - on_disk))
        ]
    only.sort(key=lambda row: -(row.info.created if row.info else 0.0))
    return [EntryRow.from_scanned(item, in_redis) for item in items] + only


def run_ls(args: argparse.Namespace) -> int:
    """List entries, most recently used first; with --remote, say which are in Redis."""
    from cached_tts._display import entry_table
    from cached_tts._remote import redacted

    items = _listing(args)
    if args.json:
        print(json.dumps([_row(item) for item in items], indent=2))
        return 0
    remote = remote_of(args)
    if not items:
        also = f" or in Redis at {redacted(remote)}" if remote else ""
        print(f"No entries in {cache_dir_of(args)}{also}.")
        return 0
    print("\n".join(entry_table(items, long=args.long)))
    return 0


# -- stats ----------------------------------------------------------------------


def _redis_figures(args: argparse.Namespace) -> dict[str, Any] | None:
    """Entries and bytes under the prefix in Redis; ``None`` without --remote."""
    from cached_tts._cli._redis import maybe_redis
    from cached_tts._remote import redacted

    remote = remote_of(args)
    with maybe_redis(remote) as tier:
        if tier is None or remote is None:
            return None
        sizes = [size for _digest, size in tier.scan_entries()]
        return {
            "url": redacted(remote),
            "prefix": tier.settings.prefix,
            "entries": len(sizes),
            "bytes": sum(sizes),
        }


def _share(used: int, cap: int) -> str:
    """``used`` against ``cap``, as ``ccache -s`` shows it.

    >>> _share(250_000_000, 1_000_000_000)
    '250.0 MB of 1.0 GB (25%)'
    """
    return f"{format_bytes(used)} of {format_bytes(cap)} ({used / cap:.0%})" if cap else "0 B"


def run_stats(args: argparse.Namespace) -> int:
    """Print what the folder (and with --remote, Redis) holds; hit counters live in each process."""
    items = store_of(args).scan()
    healthy = [s for s in items if s.damage is None and s.info is not None]
    disk_bytes = sum(s.file.size for s in items)
    remote = _redis_figures(args)
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
    print(f"Redis tier:          {_redis_line(remote)}")
    print(f"Seconds to rebuild:  {figures['seconds_to_rebuild']:.1f} s of preparation stored")
    print(
        "Hits and misses are counted per process: read them from ConditionalCache.stats() "
        "in the process that serves."
    )
    return 0


def _redis_line(remote: dict[str, Any] | None) -> str:
    from cached_tts._remote import REMOTE_ENV

    if remote is None:
        return f"not in use (--remote URL or ${REMOTE_ENV})"
    return (
        f"{plural(remote['entries'], 'entry', 'entries')}, {format_bytes(remote['bytes'])} "
        f"in {remote['url']} (prefix {remote['prefix']!r})"
    )


# -- verify ---------------------------------------------------------------------


def _verify_disk(args: argparse.Namespace) -> tuple[int, int, int]:
    """Entries checked, damaged, and damaged ones left in the folder."""
    store = store_of(args)
    items = store.scan()
    damaged = [s for s in items if s.damage is not None]
    for item in damaged:
        verb = "removed" if args.fix else "damaged"
        if args.fix:
            store.remove_entry(item.file.path)
        print(f"{verb} {item.file.path}: {item.damage}")
    if args.fix:
        store.tidy()
    return len(items), len(damaged), 0 if args.fix else len(damaged)


def _verify_redis(tier: RemoteTier, *, fix: bool) -> tuple[int, int, int]:
    """Values checked, damaged, and damaged ones left in Redis."""
    from cached_tts._cli._redis import read_values

    checked = damaged = left = 0
    digests = [digest for digest, _size in tier.scan_entries()]
    for value in read_values(tier, digests):
        checked += 1
        if value.damage is None:
            continue
        damaged += 1
        if not fix:
            print(f"damaged {value.name} in Redis: {value.damage}")
            left += 1
        elif tier.delete_value(value.digest, value.data):
            print(f"removed {value.name} from Redis: {value.damage}")
        else:
            print(f"left {value.name} in Redis: rewritten since it was read")
    return checked, damaged, left


def run_verify(args: argparse.Namespace) -> int:
    """Check every entry (with --remote, every Redis value too); with --fix remove damaged ones."""
    from cached_tts._cli._redis import maybe_redis

    removed = ", removed" * bool(args.fix)
    with maybe_redis(remote_of(args)) as tier:
        checked, damaged, remaining = _verify_disk(args)
        print(f"{plural(checked, 'entry', 'entries')} checked, {damaged} damaged{removed}")
        if tier is not None:
            checked, damaged, left = _verify_redis(tier, fix=args.fix)
            print(
                f"{plural(checked, 'entry', 'entries')} checked in Redis, "
                f"{damaged} damaged{removed}"
            )
            remaining += left
    if remaining:
        raise CommandError(
            f"{plural(remaining, 'damaged entry remains', 'damaged entries remain')}; run "
            "`cached-tts verify --fix` (with the same options) to remove them "
            "(they would be recomputed on use anyway)"
        )
    return 0


# -- prune and clear ------------------------------------------------------------


def _prune_disk(store: DiskStore, older_than: float | None, max_bytes: int | None) -> int:
    """Remove entries unused for ``older_than`` s, then LRU over ``max_bytes``; how many."""
    removed = 0
    if older_than is not None:
        cutoff = time.time() - older_than
        for stored in store.files():
            if stored.last_used < cutoff:
                store.remove_entry(stored.path)
                removed += 1
    if max_bytes is not None:
        removed += store.evict(max_bytes)
    store.tidy()
    return removed


def _prune_redis(tier: RemoteTier, cutoff: float) -> int:
    """Remove sound values created before ``cutoff``; how many. Damaged ones stay."""
    from cached_tts._cli._redis import read_values

    removed = 0
    digests = [digest for digest, _size in tier.scan_entries()]
    for value in read_values(tier, digests):
        old = value.info is not None and value.damage is None and value.info.created < cutoff
        if old and tier.delete_value(value.digest, value.data):
            removed += 1
    return removed


def run_prune(args: argparse.Namespace) -> int:
    """Remove entries unused for a while, then the least recently used over a budget.

    With --remote, --older-than also removes Redis values by their creation time.
    """
    from cached_tts._cli._redis import describe, maybe_redis
    from cached_tts._remote import redacted

    if args.older_than is None and args.max_bytes is None:
        args.usage_error("give --older-than, --max-bytes or both")
    remote = remote_of(args)
    store = store_of(args)
    with maybe_redis(remote if args.older_than is not None else None) as tier:
        removed = _prune_disk(store, args.older_than, args.max_bytes)
        left = store.files()
        print(
            f"Removed {plural(removed, 'entry', 'entries')}; {len(left)} left, "
            f"{format_bytes(sum(f.size for f in left))} in {store.directory}."
        )
        if tier is not None and remote is not None:
            cutoff = time.time() - args.older_than
            removed = _prune_redis(tier, cutoff)
            sizes = [size for _digest, size in tier.scan_entries()]
            print(
                f"Removed {plural(removed, 'entry', 'entries')} created before "
                f"{format_time(cutoff)} from {describe(tier, remote)}; {len(sizes)} left, "
                f"{format_bytes(sum(sizes))}."
            )
    if remote is not None and args.older_than is None:
        print(f"Redis at {redacted(remote)} left as it is: --max-bytes applies to the disk only.")
    return 0


def confirm(question: str, refusal: str) -> bool:
    """Ask ``question`` on the terminal; only "y" or "yes" is a yes, and Ctrl-D is a no.

    Without a terminal, raise with ``refusal``: never delete unasked.
    """
    if not sys.stdin.isatty():
        raise CommandError(refusal)
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:  # Ctrl-D: the user declined to answer
        print()
        return False
    return answer.strip().lower() in {"y", "yes"}


def run_clear(args: argparse.Namespace) -> int:
    """Remove every entry (with --remote, this prefix's entries in Redis too), after asking."""
    from cached_tts._cli._redis import describe, maybe_redis
    from cached_tts._hashing import FileHasher

    store = store_of(args)
    remote = remote_of(args)
    with maybe_redis(remote) as tier:
        count = len(store.files())
        question = f"Remove all {plural(count, 'entry', 'entries')} in {store.directory}"
        if tier is not None and remote is not None:
            in_redis = sum(1 for _entry in tier.scan_entries())
            question += (
                f" and all {plural(in_redis, 'entry', 'entries')} in {describe(tier, remote)}, "
                "which the whole fleet shares"
            )
        refusal = (
            "refusing to clear without confirmation: stdin is not a terminal; "
            "pass --yes to clear anyway"
        )
        if not args.yes and not confirm(question + "?", refusal):
            print("Nothing removed.")
            return 0
        store.clear()
        FileHasher(store.hashes_dir).forget()
        print(f"Removed {plural(count, 'entry', 'entries')} from {store.directory}.")
        if tier is not None and remote is not None:
            removed = tier.delete_entries()
            print(f"Removed {plural(removed, 'entry', 'entries')} from {describe(tier, remote)}.")
    return 0


def add_parsers(commands: Any) -> None:
    """Register ls, stats, verify, prune, clear and rm."""
    from cached_tts._cli._remove import add_parser as add_rm

    ls = commands.add_parser(
        "ls",
        help="list cached voices",
        description="One row per entry, most recently used first. HASH is the entry's name "
        "(what `rm` takes); --long adds the clip's content hash and shows whole digests. "
        "With --remote, a REDIS column (is the entry also in Redis?) and rows for entries "
        "only in Redis.",
    )
    ls.add_argument("--json", action="store_true", help="print a JSON list of objects")
    ls.add_argument("-l", "--long", action="store_true", help="whole digests and the clip hash")
    ls.set_defaults(run=run_ls)
    add_remote(ls, use="; lists its entries too")

    from cached_tts._cache import DEFAULT_MAX_DISK_BYTES

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
        "(Redis keeps no last use); --max-bytes applies to the disk only",
    )

    clear = commands.add_parser(
        "clear",
        help="remove every entry",
        description="Asks first on a terminal; refuses without --yes when stdin is not one. "
        "Redis is left alone unless --remote is given.",
    )
    clear.add_argument("--yes", action="store_true", help="do not ask")
    clear.set_defaults(run=run_clear)
    add_remote(clear, from_env=False, use="; also removes this prefix's entries from it")

    rm = add_rm(commands)
    for parser in (ls, stats, verify, prune, clear, rm):
        add_cache_dir(parser)
