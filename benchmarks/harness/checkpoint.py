"""The checkpoint cases (``--checkpoint``): models whose fingerprint comes from their files.

The first hit of a model loaded from a checkpoint folder whose file hashes
the cache folder remembers, then memory and disk hits of a model loaded as
users load one, with ``from_local``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts._keys.fingerprint import (
    CHECKPOINT_ATTR,
    CheckpointRead,
    checkpoint_signatures,
    remember_checkpoint_fingerprint,
)
from cached_tts.testing import write_checkpoint

from .cases import SEED, bench_disk_hits, bench_memory_hit, populate
from .timing import (
    Bench,
    Result,
    expect,
    expect_hashes,
    expect_tiers,
    progress,
    quiet,
    repeat,
    wait_until_hashable,
)

CHECKPOINT_REPEATS = 10


def save_checkpoint(bench: Bench) -> Path:
    """Save the preparation weights as a checkpoint folder would hold them."""
    folder = bench.root / "checkpoint"
    folder.mkdir()
    progress("saving ve.safetensors and s3gen.safetensors...")
    started = time.perf_counter()
    for name, module in (("ve", bench.ve), ("s3gen", bench.s3gen)):
        state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
        save_file(state, folder / f"{name}.safetensors")
        bench.sizes[f"checkpoint_{name}_bytes"] = (folder / f"{name}.safetensors").stat().st_size
    bench.setup_seconds["save_checkpoint"] = time.perf_counter() - started
    return folder.resolve()


def bench_checkpoint(bench: Bench) -> None:
    """The first hit of a checkpoint model, in a new cache whose folder knows the file hashes."""
    checkpoint = save_checkpoint(bench)
    wait_until_hashable(*checkpoint.iterdir(), bench.clip)
    folder = bench.root / "cache-checkpoint"
    clip = str(bench.clip)
    current: list[tuple[ConditionalCache, Any]] = []

    def setup() -> Callable[[], object]:
        cache = ConditionalCache(folder)
        model = bench.cached_model(cache)
        # As from_local leaves it: the files it read, hashed once on loading.
        model.__dict__[CHECKPOINT_ATTR] = CheckpointRead(
            checkpoint, checkpoint_signatures(checkpoint)
        )
        remember_checkpoint_fingerprint(model, cache._hasher)
        current[:] = [(cache, model)]
        return lambda: model.prepare_conditionals(clip)

    progress("checkpoint model, first run (hashes the checkpoint files, then prepares)...")
    first = repeat(bench, 1, setup)
    expect_tiers(current[0][0], memory=0, disk=0, misses=1)
    expect_hashes(current[0][0], 3)  # ve, s3gen and the clip
    bench.add(
        Result("checkpoint_first_run", "checkpoint model, first run (hash files + miss)", first)
    )

    def check() -> None:
        expect_tiers(current[0][0], memory=0, disk=1, misses=0)
        expect_hashes(current[0][0], 0)

    bench.add(
        Result(
            "first_hit_checkpoint_hashes_remembered",
            "first hit, checkpoint model, hashes remembered",
            repeat(bench, CHECKPOINT_REPEATS, setup, check),
        )
    )


def bench_checkpoint_loaded(bench: Bench) -> None:
    """Memory and disk hits of a model loaded as users load one, with ``from_local``.

    The random-weight English checkpoint (1.6 GB) is written into the run's
    folder and removed as soon as its model is timed.
    """
    checkpoint = bench.root / "checkpoint-english"
    progress("writing a random-weight English checkpoint (1.6 GB)...")
    started = time.perf_counter()
    write_checkpoint(checkpoint, "english", seed=SEED)
    bench.setup_seconds["write_checkpoint"] = time.perf_counter() - started
    try:
        progress("loading it with CachedChatterboxTTS.from_local...")
        started = time.perf_counter()
        with quiet():
            model = CachedChatterboxTTS.from_local(
                checkpoint, str(bench.device), cache=ConditionalCache(cache_dir=None)
            )
        bench.setup_seconds["load_checkpoint"] = time.perf_counter() - started
        expect(
            model.cache.model_fingerprint(model).startswith("ckpt:"),
            "the checkpoint model's fingerprint was not taken from its files",
        )
        folder = bench.root / "cache-loaded"
        warm = populate(bench, model, folder)
        bench_memory_hit(bench, model, warm, kind="checkpoint-loaded", key="_checkpoint_loaded")
        bench_disk_hits(
            bench, model, None, folder=folder, kind="checkpoint-loaded", key="_checkpoint_loaded"
        )
        del model, warm
    finally:
        shutil.rmtree(checkpoint, ignore_errors=True)
