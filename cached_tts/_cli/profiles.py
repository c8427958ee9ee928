"""Looking voices up before a model is loaded: the key parts a model was seen to use.

A key is ``(content, weights, settings)``. The content hash needs only the
clip. The weights fingerprint and the settings need the model, which takes
11 to 15 s to build, so the commands remember them: after a model has
prepared a voice, the key it used (caught as it went by, never recomputed
here) is written to ``<cache_dir>/models/<identity>.json``. The identity is
everything that decides those parts before a model exists:

* the model kind and the device type;
* real weights: the hub revision the loader will load (the Hub's current one
  when it answers, as ``from_pretrained`` loads it, else the local snapshot)
  and the content hash of that checkpoint folder's weight files
  (:func:`checkpoint_fingerprint`, remembered per file); random weights: the
  seed of :func:`cached_tts.testing.random_components`;
* cached-tts's version, the entry schema, and every version the key itself
  names (:func:`cached_tts._keys.versions.library_versions`: chatterbox with its
  source digest, torch, numpy, soxr and the other preparation libraries).

A stale profile would make ``warm`` report as cached a voice that production
then misses, so anything unknowable here (a Hub that answers with another
revision, or not at all when asked) means no profile: the model is loaded.
Lookups still go through the full key, verified, so nothing wrong is served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cached_tts._exceptions import WeightsUnavailableError

if TYPE_CHECKING:
    from cached_tts._cache.cache import ConditionalCache
    from cached_tts._keys.hashing import FileHasher
    from cached_tts._keys.key import EntryKey

__all__ = ["ModelProfile", "checkpoint_fingerprint", "identity", "recording_keys"]

logger = logging.getLogger("cached_tts")

# The seed load_model(random_weights=True) builds with.
RANDOM_SEED = 0


def checkpoint_fingerprint(folder: str | os.PathLike[str], hasher: FileHasher) -> str:
    """The fingerprint of a checkpoint folder, as :mod:`cached_tts._keys.fingerprint` does."""
    from cached_tts._keys.fingerprint import checkpoint_fingerprint as from_fingerprint

    return from_fingerprint(folder, hasher)


def _versions() -> dict[str, str]:
    from cached_tts._keys import versions as _versions
    from cached_tts._keys.key import SCHEMA_VERSION
    from cached_tts._version import __version__

    # The very function whose versions every key's settings hold.
    return {
        "cached-tts": __version__,
        "schema": str(SCHEMA_VERSION),
        **dict(_versions.library_versions()),
    }


def _local_checkpoint(kind: str) -> str | None:
    """The local snapshot the loader would use, or ``None`` when there is none."""
    from cached_tts._cli.loading import local_snapshot

    try:
        return local_snapshot(kind)
    except WeightsUnavailableError:  # only means "load the model to know"
        return None


def _hub_revision(kind: str) -> str | None:
    """The commit the Hub serves now for ``kind``'s repository; ``None`` if it does not say."""
    from huggingface_hub import HfApi

    from cached_tts._cli.loading import REPOSITORIES

    try:
        info = HfApi().model_info(REPOSITORIES[kind], revision="main", timeout=_HUB_TIMEOUT)
    except Exception:  # noqa: BLE001 -- any failure only means "load the model to know"
        return None
    return info.sha


_HUB_TIMEOUT = 10.0


def _revision_to_load(kind: str, folder: str) -> str | None:
    """The revision the loader will load, given the local snapshot ``folder``.

    Online, ``from_pretrained`` loads what the Hub serves now, which may be
    newer than the local snapshot; offline, the local snapshot. ``None``
    when the two differ or the Hub does not say: only loading tells then.
    """
    from cached_tts._cli.loading import hub_reachable

    local = Path(folder).name  # the snapshot folder is named by its commit
    if not hub_reachable():
        return local
    served = _hub_revision(kind)
    return local if served == local else None


def identity(
    kind: str, device: str, *, random_weights: bool, hasher: FileHasher
) -> dict[str, str] | None:
    """What decides a model's key parts before it is built; ``None`` if unknowable here."""
    from cached_tts._exceptions import ContentChangedError

    found = {"kind": kind, "device": device.split(":", maxsplit=1)[0], **_versions()}
    if random_weights:
        found["weights"] = f"random:{RANDOM_SEED}"
        return found
    folder = _local_checkpoint(kind)
    revision = None if folder is None else _revision_to_load(kind, folder)
    if folder is None or revision is None:
        return None
    try:
        found["weights"] = checkpoint_fingerprint(folder, hasher)
    except (OSError, ContentChangedError):
        return None  # a checkpoint being replaced: loading it tells what it holds
    found["revision"] = revision
    return found


@dataclass(frozen=True)
class ModelProfile:
    """The weights fingerprint and settings a model of one identity uses."""

    weights: str
    settings: tuple[tuple[str, str], ...]

    def key(self, content: str) -> EntryKey:
        """The key of the clip whose content hash is ``content``."""
        from cached_tts._keys.key import entry_key

        return entry_key(content, self.weights, self.settings)

    @staticmethod
    def _path(folder: Path, ident: dict[str, str]) -> Path:
        name = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        return folder / "models" / f"{name}.json"

    @classmethod
    def load(cls, folder: Path, ident: dict[str, str]) -> ModelProfile | None:
        """The profile remembered for ``ident`` in the cache folder, if any."""
        try:
            record = _read_profile(cls._path(folder, ident))
            if record["identity"] != ident:
                return None
            settings = tuple((str(k), str(v)) for k, v in record["settings"])
            return cls(str(record["weights"]), settings)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, folder: Path, ident: dict[str, str]) -> None:
        """Remember this profile for ``ident``; failing to is only a slower next run."""
        from cached_tts._atomic import ensure_private_dir, write_atomically

        path = self._path(folder, ident)
        record = {"identity": ident, "weights": self.weights, "settings": self.settings}
        try:
            ensure_private_dir(path.parent)
            write_atomically(path, json.dumps(record, indent=1).encode(), durable=False)
        except OSError as exc:
            logger.debug("Could not remember the model's key parts in %s: %s", path, exc)


# A profile is a few KiB (an identity and a key's settings, digests included);
# reading more than this would let a stray large or sparse file exhaust memory.
_MAX_PROFILE_BYTES = 64 * 1024


def _read_profile(path: Path) -> Any:
    """The JSON record in ``path``; ``ValueError`` if it is too large to be a profile."""
    from cached_tts._keys.hashing import read_small_json

    return read_small_json(path, _MAX_PROFILE_BYTES, "a model profile")


def recording_keys(cache: ConditionalCache) -> list[EntryKey]:
    """From now on, every key ``cache`` is asked for, in order.

    The model's own wrapper computes each key; this only watches it go by, so
    a profile is always the model's own, never a re-derivation.
    """
    seen: list[EntryKey] = []
    lookup: Callable[..., Any] = cache.get_or_prepare

    def watched(key: EntryKey, prepare: Callable[[], Any], **options: Any) -> Any:
        seen.append(key)
        return lookup(key, prepare, **options)  # source=, wait=: the lookup's own

    setattr(cache, "get_or_prepare", watched)  # noqa: B010 -- on this instance only
    return seen
