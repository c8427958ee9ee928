"""Subcommands that check or tidy a cache folder and its shared tiers: verify, prune, clear.

Like ls and stats (:mod:`cached_tts._cli.cache_commands`, which registers them
all), none of them loads a model.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from cached_tts._cli.options import (
    CommandError,
    format_bytes,
    format_time,
    plural,
    remote_of,
    store_of,
)

if TYPE_CHECKING:
    import argparse

    from cached_tts._tiers.base import SharedTier
    from cached_tts._tiers.disk.store import DiskStore

__all__ = ["confirm", "run_clear", "run_prune", "run_verify"]


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
    from cached_tts._tiers.redis.settings import redacted

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
