"""Loading a cached model for the command line: real weights, or random ones.

Real weights come from ``from_pretrained`` (the Hugging Face Hub or its local
cache). ``random_weights=True`` builds the real architecture with random
weights from :mod:`cached_tts.testing`, which works offline.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Literal

import torch

from cached_tts._cache.cache import ConditionalCache
from cached_tts._exceptions import WeightsUnavailableError

__all__ = [
    "REPOSITORIES",
    "ModelKind",
    "hub_reachable",
    "load_model",
    "local_snapshot",
    "resolve_device",
]

logger = logging.getLogger("cached_tts")

ModelKind = Literal["english", "multilingual", "turbo"]

_HUB_HOST = "huggingface.co"


def resolve_device(device: str = "auto") -> str:
    """``auto`` becomes ``cuda``, ``mps`` or ``cpu``, whichever is available.

    >>> resolve_device("cpu")
    'cpu'
    """
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers at all (offline mode says no)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    try:
        with socket.create_connection((_HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_model(
    kind: ModelKind = "english",
    *,
    device: str = "auto",
    random_weights: bool = False,
    cache: ConditionalCache | None = None,
) -> Any:
    """A cached model of ``kind`` on ``device``.

    Raises :class:`~cached_tts.WeightsUnavailableError` when real weights are
    asked for and cannot be had.
    """
    from cached_tts._wrapping import models as _models

    classes: dict[str, Any] = {
        "english": _models.CachedChatterboxTTS,
        "multilingual": _models.CachedChatterboxMultilingualTTS,
        "turbo": _models.CachedChatterboxTurboTTS,
    }
    cls = classes[kind]
    device = resolve_device(device)
    if random_weights:
        from cached_tts.testing import random_components, random_model

        logger.info("Building the %s architecture with random weights on %s", kind, device)
        components = random_components(kind, device=device)
        return random_model(cls, components=components, device=device, cache=cache)
    if hub_reachable():
        logger.info("Loading %s weights with from_pretrained on %s", kind, device)
        return cls.from_pretrained(device, cache=cache)
    # Offline, from_pretrained would retry for half a minute before failing:
    # look in the local Hugging Face cache instead.
    return cls.from_local(local_snapshot(kind), device, cache=cache)


#: The Hub repository each kind of model loads from.
REPOSITORIES = {
    "english": "ResembleAI/chatterbox",
    "multilingual": "ResembleAI/chatterbox",
    "turbo": "ResembleAI/chatterbox-turbo",
}


def local_snapshot(kind: str) -> str:
    """The folder of ``kind``'s repository in the local Hugging Face cache, without asking the Hub.

    Raises :class:`~cached_tts.WeightsUnavailableError` when it is not there.
    """
    from huggingface_hub import snapshot_download

    repo = REPOSITORIES[kind]
    try:
        return str(snapshot_download(repo, local_files_only=True))
    except Exception as exc:
        raise WeightsUnavailableError(
            f"The Hugging Face Hub is unreachable and {repo} is not in the local Hugging "
            "Face cache. Download it once while online (`huggingface-cli download "
            f"{repo}`), or use random weights (--random-weights) to try cached-tts offline."
        ) from exc
