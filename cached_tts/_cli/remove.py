"""``cached-tts rm HASH...|CLIP...``: remove entries by name, or every entry made from a clip.

A HASH is any unique prefix (4 hex digits or more) of the name ``ls`` shows.
A CLIP is a file: it is hashed, and every entry made from it, for any model
and any settings, is removed from the folder (and with ``--remote``, from
the shared tiers it names). Every argument is checked before anything is removed.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from typing import Any

from cached_tts._cli.options import CommandError, add_remote, plural, remote_of, store_of

__all__ = ["add_parser", "run_rm"]

_HEX = re.compile(r"^[0-9a-fA-F]{4,64}$")


@dataclass(frozen=True)
class _Target:
    text: str
    digest: str | None = None  # the entry a HASH names
    content: str | None = None  # the content hash of a CLIP


def _classify(text: str) -> str:
    if os.path.isdir(text):
        raise CommandError(f"{text} is a folder: give clip files or hashes from `cached-tts ls`")
    if os.path.exists(text):
        return "clip"
    if _HEX.match(text):
        return "hash"
    raise CommandError(
        f"{text!r} is neither a clip file nor a hash: give a file, or 4 or more hex digits "
        "of a HASH that `cached-tts ls` shows"
    )


def _resolve(texts: list[str], known: set[str]) -> list[_Target]:
    """Each argument as an entry digest or a clip's content hash; any doubt is an error."""
    from cached_tts._cache.forget import clip_hash, match_prefixes

    kinds = {text: _classify(text) for text in texts}
    matches = match_prefixes([t for t in texts if kinds[t] == "hash"], known)
    targets = []
    for text in texts:
        if kinds[text] == "clip":
            targets.append(_Target(text, content=clip_hash(text)))
            continue
        found = matches[text]
        if not found:
            raise CommandError(f"no entry's hash starts with {text}; see `cached-tts ls`")
        if len(found) > 1:
            raise CommandError(
                f"{text} starts {len(found)} entries' hashes; give more digits "
                "(`cached-tts ls --long` shows them whole)"
            )
        targets.append(_Target(text, digest=found[0]))
    return targets


def run_rm(args: argparse.Namespace) -> int:
    """Remove what each argument names; exit 1 if an argument names nothing or is ambiguous."""
    from cached_tts._cache.forget import Erased, erase_content, erase_digests
    from cached_tts._cli.fleet import fleet_tiers

    store = store_of(args)
    with fleet_tiers(remote_of(args)) as tiers:
        known = {stored.path.stem for stored in store.files()}
        for tier in tiers:
            known |= {stored.digest for stored in tier.scan()}
        where = "".join(f" and {tier.describe()}" for tier in tiers)
        unreadable = 0
        for target in _resolve(args.targets, known):
            erased = Erased()
            if target.content is not None:
                erase_content(target.content, store, tiers, erased)
                unreadable = max(unreadable, erased.unreadable)
                print(
                    f"Removed {plural(erased.count, 'entry', 'entries')} made from "
                    f"{target.text} (clip hash {target.content[:12]}) from "
                    f"{store.directory}{where}."
                )
            elif target.digest is not None:
                held = []
                for tier in tiers:
                    before = len(erased.shared)
                    erase_digests([target.digest], None, [tier], erased)
                    if len(erased.shared) > before:
                        held.append(tier.describe())
                erase_digests([target.digest], store, [], erased)
                held = [str(store.directory)] * bool(erased.disk) + held
                found = " and ".join(held) or "nowhere: removed meanwhile"
                print(f"Removed {target.digest[:12]} from {found}.")
    if unreadable:
        print(
            f"{plural(unreadable, 'damaged entry', 'damaged entries')} could not be read to "
            "check its clip; `cached-tts verify --fix` removes damaged entries."
        )
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register rm; returns its parser."""
    rm: argparse.ArgumentParser = commands.add_parser(
        "rm",
        help="remove entries by hash, or every entry made from a clip",
        description="Remove the entries named by HASH (any unique prefix of the hash `ls` "
        "shows), and for each CLIP file every entry made from it: any model, any settings. "
        "Processes already running keep what they hold in memory until they restart "
        "(or call cache.forget(clip)).",
    )
    rm.add_argument("targets", nargs="+", metavar="HASH|CLIP")
    rm.set_defaults(run=run_rm)
    add_remote(rm, from_env=False, use="; removes them from it too (the whole fleet's tier)")
    return rm
