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

from cached_tts._cli.options import (
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
    from cached_tts._cache.display import EntryRow
    from cached_tts._tiers.base import SharedTier
    from cached_tts._tiers.disk import DiskStore

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
    from cached_tts._tiers.redis import REMOTE_ENV

    if remote is None:
        return [f"{'Shared tiers:':<21}not in use (--remote URL,... or ${REMOTE_ENV})"]
    return [
        f"{tier['label'] + ' tier:':<20} {plural(tier['entries'], 'entry', 'entries')}, "
        f"{format_bytes(tier['bytes'])} in {tier['where']}"
        for tier in remote
    ]


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


def _verify_tier(tier: SharedTier, *, fix: bool) -> tuple[int, int, int]:
    """Values checked, damaged, and damaged ones left in a shared tier."""
    from cached_tts._cli.fleet import read_values

    checked = damaged = left = 0
    digests = [stored.digest for stored in tier.scan()]
    for value in read_values(tier, digests):
        checked += 1
        if value.damage is None:
            continue
        damaged += 1
        if not fix:
            print(f"damaged {value.name} in {tier.label}: {value.damage}")
            left += 1
        elif tier.delete(value.digest, value.data):
            print(f"removed {value.name} from {tier.label}: {value.damage}")
        else:
            print(f"left {value.name} in {tier.label}: rewritten since it was read")
    return checked, damaged, left


def run_verify(args: argparse.Namespace) -> int:
    """Check every entry (with --remote, every shared one too); with --fix remove damaged ones."""
    from cached_tts._cli.fleet import fleet_tiers

    removed = ", removed" * bool(args.fix)
    with fleet_tiers(remote_of(args)) as tiers:
        checked, damaged, remaining = _verify_disk(args)
        print(f"{plural(checked, 'entry', 'entries')} checked, {damaged} damaged{removed}")
        for tier in tiers:
            checked, damaged, left = _verify_tier(tier, fix=args.fix)
            print(
                f"{plural(checked, 'entry', 'entries')} checked in {tier.label}, "
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


def _prune_tier(tier: SharedTier, cutoff: float) -> int:
    """Remove sound entries created before ``cutoff``; how many. Damaged ones stay."""
    from cached_tts._cli.fleet import read_values

    removed = 0
    # By the creation time in each entry's header, as Redis keeps no write time: an
    # object's write time would not do, since one copied from an older entry is new.
    digests = [stored.digest for stored in tier.scan()]
    for value in read_values(tier, digests):
        old = value.info is not None and value.damage is None and value.info.created < cutoff
        if old and tier.delete(value.digest, value.data):
            removed += 1
    return removed


def run_prune(args: argparse.Namespace) -> int:
    """Remove entries unused for a while, then the least recently used over a budget.

    With --remote, --older-than also removes shared entries by their creation time.
    """
    from cached_tts._cli.fleet import fleet_tiers
    from cached_tts._tiers.redis_settings import redacted

    if args.older_than is None and args.max_bytes is None:
        args.usage_error("give --older-than, --max-bytes or both")
    remote = remote_of(args)
    store = store_of(args)
    with fleet_tiers(remote if args.older_than is not None else None) as tiers:
        removed = _prune_disk(store, args.older_than, args.max_bytes)
        left = store.files()
        print(
            f"Removed {plural(removed, 'entry', 'entries')}; {len(left)} left, "
            f"{format_bytes(sum(f.size for f in left))} in {store.directory}."
        )
        for tier in tiers:
            cutoff = time.time() - args.older_than
            removed = _prune_tier(tier, cutoff)
            sizes = [stored.size for stored in tier.scan()]
            print(
                f"Removed {plural(removed, 'entry', 'entries')} created before "
                f"{format_time(cutoff)} from {tier.describe()}; {len(sizes)} left, "
                f"{format_bytes(sum(sizes))}."
            )
    if remote is not None and args.older_than is None:
        print(f"{redacted(remote)} left as it is: --max-bytes applies to the disk only.")
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
    """Remove every entry (with --remote, the shared tiers' entries too), after asking."""
    from cached_tts._cli.fleet import fleet_tiers
    from cached_tts._keys.hashing import FileHasher

    store = store_of(args)
    with fleet_tiers(remote_of(args)) as tiers:
        count = len(store.files())
        question = f"Remove all {plural(count, 'entry', 'entries')} in {store.directory}"
        for tier in tiers:
            shared = sum(1 for _entry in tier.scan())
            question += f" and all {plural(shared, 'entry', 'entries')} in {tier.describe()}"
        if tiers:
            question += ", which the whole fleet shares"
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
        for tier in tiers:
            removed = tier.delete_all()
            print(f"Removed {plural(removed, 'entry', 'entries')} from {tier.describe()}.")
    return 0


def add_parsers(commands: Any) -> None:
    """Register ls, stats, verify, prune, clear and rm."""
    from cached_tts._cli.remove import add_parser as add_rm

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
