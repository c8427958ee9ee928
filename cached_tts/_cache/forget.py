"""Erasing a voice: every entry made from one clip, or entries named by digest.

A voice clip is biometric data, and an erasure request must be one call:
:meth:`ConditionalCache.forget` and ``cached-tts rm CLIP`` remove every entry
whose key's content hash is the clip's, whatever the model or settings, from
each tier they are given. Entries are found by reading their headers (the key
is stored in each entry), so nothing needs the model that made them.

A damaged entry's header cannot be trusted, so its clip is unknown: it is
counted, not removed (``cached-tts verify --fix`` removes it).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cached_tts._entries.format import ENTRY_SUFFIX
from cached_tts._keys.hashing import sha256_file
from cached_tts._tiers.base import SharedTier

if TYPE_CHECKING:
    from cached_tts._tiers.disk.store import DiskStore

__all__ = ["Erased", "clip_hash", "erase_content", "erase_digests", "match_prefixes"]


@dataclass
class Erased:
    """What an erasure removed, per tier, as entry digests; and the damaged entries left.

    ``redis`` is the deprecated name of ``shared``, from before buckets.

    >>> erased = Erased(shared=["ab"])
    >>> erased.count
    1
    """

    memory: list[str] = field(default_factory=list)
    disk: list[str] = field(default_factory=list)
    #: From the shared tiers (Redis, object stores).
    shared: list[str] = field(default_factory=list)
    unreadable: int = 0

    @property
    def count(self) -> int:
        """Distinct entries removed from any tier."""
        return len(set(self.memory) | set(self.disk) | set(self.shared))

    @property
    def redis(self) -> list[str]:
        """Deprecated: :attr:`shared`, which holds the buckets' entries too."""
        warnings.warn(
            "Erased.redis is deprecated: use Erased.shared (entries removed from every "
            "shared tier, Redis and buckets alike)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.shared


def clip_hash(clip: str | os.PathLike[str] | bytes) -> str:
    """The content hash a clip's entries are keyed on: sha256 of its bytes.

    >>> clip_hash(b"abc")[:16]
    'ba7816bf8f01cfea'
    """
    if isinstance(clip, bytes):
        return hashlib.sha256(clip).hexdigest()
    return sha256_file(clip)


def erase_content(
    content: str,
    store: DiskStore | None,
    remote: SharedTier | Iterable[SharedTier] | None,
    erased: Erased,
) -> None:
    """Remove every entry keyed on ``content`` from the disk folder and the shared tiers."""
    if store is not None:
        for item in store.scan():
            if item.info is None or item.damage is not None:
                erased.unreadable += 1
            elif item.info.key.content == content:
                item.file.path.unlink(missing_ok=True)
                erased.disk.append(item.file.path.stem)
    from cached_tts._entries.format import check

    for tier in _tiers(remote):
        for stored in list(tier.scan()):
            data = tier.read(stored.digest)
            if data is None:
                continue
            info, damage = check(data, stored.digest)
            if info is None or damage is not None:
                erased.unreadable += 1
            elif info.key.content == content and tier.delete(stored.digest, data):
                erased.shared.append(stored.digest)


def erase_digests(
    digests: Iterable[str],
    store: DiskStore | None,
    remote: SharedTier | Iterable[SharedTier] | None,
    erased: Erased,
) -> None:
    """Remove the entries named by their whole digests from the folder and the shared tiers."""
    for digest in digests:
        if store is not None:
            path = store.entries_dir / f"{digest}{ENTRY_SUFFIX}"
            if path.is_file():
                path.unlink(missing_ok=True)
                erased.disk.append(digest)
        for tier in _tiers(remote):
            data = tier.read(digest)
            if data is not None and tier.delete(digest, data):
                erased.shared.append(digest)


def _tiers(remote: SharedTier | Iterable[SharedTier] | None) -> list[SharedTier]:
    if remote is None:
        return []
    return [remote] if isinstance(remote, SharedTier) else list(remote)


def match_prefixes(prefixes: Iterable[str], digests: Iterable[str]) -> dict[str, list[str]]:
    """Each prefix and the digests it starts, for ``rm HASH`` (only unique ones may be removed).

    >>> match_prefixes(["ab", "cd1"], ["abc", "abd", "cd12"])
    {'ab': ['abc', 'abd'], 'cd1': ['cd12']}
    """
    known = sorted(set(digests))
    return {p: [d for d in known if d.startswith(p.lower())] for p in prefixes}
