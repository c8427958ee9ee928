"""One of several processes preparing the same voice into one cache folder.

Run in a child of the warm server (tests/integration/warm.py), which hands it
the English random-weight ``components``:
``main(components, [CACHE_DIR, CLIP, GO_FILE, REDIS_URL?])``.
Prints one JSON line: this process's stats and a digest of what it holds.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import random_model


def conditionals_digest(conds) -> str:
    digest = hashlib.sha256()
    tensors = sorted({**vars(conds.t3), **conds.gen}.items())
    for name, value in tensors:
        if torch.is_tensor(value):
            digest.update(name.encode())
            digest.update(value.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def main(components: Any, argv: list[str]) -> None:
    cache_dir, clip, go_file = argv[:3]
    remote = argv[3] if len(argv) > 3 else None
    model = random_model(
        CachedChatterboxTTS,
        components=components,
        cache=ConditionalCache(cache_dir, remote=remote),
    )
    Path(go_file + f".ready-{time.time_ns()}").touch()
    while not Path(go_file).exists():
        time.sleep(0.01)
    model.prepare_conditionals(clip, exaggeration=0.5)
    stats = model.cache.stats()
    print(  # noqa: T201 -- the parent test reads this line
        json.dumps(
            {
                "misses": stats.misses,
                "disk_hits": stats.disk_hits,
                "remote_hits": stats.remote_hits,
                "digest": conditionals_digest(model.conds),
            }
        )
    )
