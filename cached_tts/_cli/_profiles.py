"""Looking voices up before a model is loaded: the key parts a model was seen to use.

A key is ``(content, weights, settings)``. The content hash needs only the
clip. The weights fingerprint and the settings need the model, which takes
11 to 15 s to build, so the commands remember them: after a model has
prepared a voice, the key it used (caught as it went by, never recomputed
here) is written to ``<cache_dir>/models/<identity>.json``. The identity is
everything that decides those parts before a model exists:

* the model kind and the device type;
* real weights: the checkpoint folder the loader will use, by the content hash
  of its weight files (:func:`checkpoint_fingerprint`, remembered per file);
  random weights: the seed of :func:`cached_tts.testing.random_components`;
* the versions of cached-tts, chatterbox-tts, torch and librosa, and the
  entry schema.

A prediction from a stale profile can only make ``warm`` skip a voice, never
serve a wrong one: lookups still go through the full key, verified.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cached_tts._cache import ConditionalCache
    from cached_tts._hashing import FileHasher
    from cached_tts._keys import EntryKey

__all__ = ["ModelProfile", "checkpoint_fingerprint", "identity", "recording_keys"]

logger = logging.getLogger("cached_tts")

# The seed load_model(random_weights=True) builds with.
RANDOM_SEED = 0

_REPOS = {
    "english": "ResembleAI/chatterbox",
    "multilingual": "ResembleAI/chatterbox",
    "turbo": "ResembleAI/chatterbox-turbo",
}


def checkpoint_fingerprint(folder: str | os.PathLike[str], hasher: FileHasher) -> str:
    """The fingerprint of a checkpoint folder, as :mod:`cached_tts._fingerprint` computes it."""
    from cached_tts._fingerprint import checkpoint_fingerprint as from_fingerprint

    return from_fingerprint(folder, hasher)


def _versions() -> dict[str, str]:
    from cached_tts import __version__
    from cached_tts._keys import SCHEMA_VERSION

    found = {"cached-tts": __version__, "schema": str(SCHEMA_VERSION)}
    for dist in ("chatterbox-tts", "torch", "librosa"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "absent"
    return found


def _local_checkpoint(kind: str) -> str | None:
    """The local snapshot the loader would use, or ``None`` when there is none."""
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(_REPOS[kind], local_files_only=True))
    except Exception:  # noqa: BLE001 -- any failure only means "load the model to know"
        return None


def identity(
    kind: str, device: str, *, random_weights: bool, hasher: FileHasher
) -> dict[str, str] | None:
    """What decides a model's key parts before it is built; ``None`` if unknowable here."""
    found = {"kind": kind, "device": device.split(":", maxsplit=1)[0], **_versions()}
    if random_weights:
        found["weights"] = f"random:{RANDOM_SEED}"
        return found
    folder = _local_checkpoint(kind)
    if folder is None:
        return None
    try:
        found["weights"] = checkpoint_fingerprint(folder, hasher)
    except OSError:
        return None
    return found


@dataclass(frozen=True)
class ModelProfile:
    """The weights fingerprint and settings a model of one identity uses."""

    weights: str
    settings: tuple[tuple[str, str], ...]

    def key(self, content: str) -> EntryKey:
        """The key of the clip whose content hash is ``content``."""
        from cached_tts._keys import entry_key

        return entry_key(content, self.weights, self.settings)

    @staticmethod
    def _path(folder: Path, ident: dict[str, str]) -> Path:
        name = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        return folder / "models" / f"{name}.json"

    @classmethod
    def load(cls, folder: Path, ident: dict[str, str]) -> ModelProfile | None:
        """The profile remembered for ``ident`` in the cache folder, if any."""
        try:
            record = json.loads(cls._path(folder, ident).read_bytes())
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
