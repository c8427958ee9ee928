"""The cases every run times: the first call, misses, memory and disk hits, a new wrapper.

Each case names its result (``Result.key``), checks with the cache's counters
that it measured the tier it claims to, and is held to its target where it
has one. :func:`build` makes the models and the clip they share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from chatterbox.models.s3gen import S3Gen
from chatterbox.models.t3 import T3
from chatterbox.models.voice_encoder import VoiceEncoder
from chatterbox.tts import Conditionals

from cached_tts import ConditionalCache
from cached_tts.testing import _char_tokenizer, write_voice_clip

from .timing import (
    Bench,
    Case,
    Result,
    expect,
    expect_hashes,
    expect_tiers,
    fmt,
    interleave,
    progress,
    quiet,
    repeat,
    wait_until_hashable,
)

CLIP_SECONDS = 10.0
SEED = 0
MEMORY_HIT_REPEATS = 500
DISK_HIT_REPEATS = 200
NEW_WRAPPER_REPEATS = 5
# A server between requests: caches and torch's thread pool have gone cold.
IDLE_SECONDS = 0.1
IDLE_REPEATS = 20

MEMORY_HIT_TARGET_S = 30e-6
#: A disk hit in a new cache object: with the clip's hash remembered, and hashed from scratch.
DISK_HIT_REMEMBERED_TARGET_S = 0.5e-3
DISK_HIT_TARGET_S = 1e-3


def build(device: torch.device, root: Path) -> Bench:
    """Write the clip and build the full architecture with seeded random weights."""
    clip = write_voice_clip(root / "voice.wav", seconds=CLIP_SECONDS, seed=SEED)
    timings: dict[str, float] = {}

    def timed(name: str, make: Callable[[], Any]) -> Any:
        progress(f"building {name}...")
        started = time.perf_counter()
        built = make()
        timings[f"build_{name}"] = time.perf_counter() - started
        return built

    torch.manual_seed(SEED)
    with quiet():
        t3 = timed("t3", lambda: T3().to(device).eval())
        s3gen = timed("s3gen", lambda: S3Gen().to(device).eval())
        ve = timed("voice_encoder", lambda: VoiceEncoder().to(device).eval())
        tokenizer = _char_tokenizer()
    bench = Bench(device, root, clip, t3, s3gen, ve, tokenizer)
    bench.setup_seconds.update(timings)
    bench.sizes["t3_parameters"] = sum(p.numel() for p in t3.parameters())
    bench.sizes["clip_file_bytes"] = clip.stat().st_size
    return bench


def bench_first_call(bench: Bench) -> Any:
    """Upstream ``prepare_conditionals``, first call in the process; returns the plain model."""
    plain = bench.plain_model()
    clip = str(bench.clip)
    progress("first preparation in this process (plain model)...")
    first = repeat(bench, 1, lambda: lambda: plain.prepare_conditionals(clip))
    bench.add(Result("first_call_plain", "first call in process (plain model)", first))
    return plain


def bench_miss(bench: Bench, plain: Any, model: Any, repeat_miss: int) -> None:
    """A miss (each one on a new cache and a new, empty folder), against upstream.

    Misses alternate with upstream's plain ``prepare_conditionals``, so that
    both see the same load on the machine.
    """
    clip = str(bench.clip)
    caches: list[ConditionalCache] = []

    def setup() -> Callable[[], object]:
        caches.append(ConditionalCache(bench.root / f"miss-{len(caches)}"))
        model.cache = caches[-1]
        return lambda: model.prepare_conditionals(clip)

    def check() -> None:
        expect_tiers(caches[-1], memory=0, disk=0, misses=1)

    progress("misses, taking turns with plain preparations...")
    plain_samples, miss_samples = interleave(
        bench,
        repeat_miss,
        [Case(lambda: lambda: plain.prepare_conditionals(clip)), Case(setup, check)],
    )
    bench.add(Result("plain_prepare", "plain prepare_conditionals, warm (no cache)", plain_samples))
    bench.add(Result("miss", "miss (empty cache folder)", miss_samples))


def populate(bench: Bench, model: Any, folder: Path | None = None) -> ConditionalCache:
    """Prepare the voice once into ``folder`` (the shared one); returns that cache, warm."""
    folder = folder or bench.root / "cache"
    cache = ConditionalCache(folder)
    model.cache = cache
    wait_until_hashable(bench.clip)
    model.prepare_conditionals(str(bench.clip))
    expect_tiers(cache, memory=0, disk=0, misses=1)
    expect(any((folder / "hashes").glob("*.json")), "the clip's hash was not remembered")
    stats = cache.stats()
    expect(stats.entries == 1 and stats.disk_entries == 1, f"expected one entry, got {stats}")
    bench.sizes["entry_file_bytes"] = stats.disk_bytes
    bench.sizes["memory_tier_bytes_per_entry"] = stats.memory_bytes
    return cache


def bench_memory_hit(
    bench: Bench, model: Any, cache: ConditionalCache, *, kind: str = "hand-built", key: str = ""
) -> None:
    """Memory hits on the warm cache, of a ``kind`` model; results named ``memory_hit{key}``."""
    model.cache = cache
    before = cache.stats().memory_hits
    clip = str(bench.clip)
    progress(f"memory hits ({kind} model)...")
    samples = repeat(bench, MEMORY_HIT_REPEATS, lambda: lambda: model.prepare_conditionals(clip))
    expect_tiers(cache, memory=before + MEMORY_HIT_REPEATS, disk=0, misses=1)
    result = Result(
        f"memory_hit{key}",
        f"memory hit, {kind} model",
        samples,
        f"< {MEMORY_HIT_TARGET_S * 1e6:.0f} µs",
    )
    result.met = result.median < MEMORY_HIT_TARGET_S
    bench.add(result)
    if key:
        return  # the pause after idling is the same for every model

    def after_idle() -> Callable[[], object]:
        time.sleep(IDLE_SECONDS)
        return lambda: model.prepare_conditionals(clip)

    progress("memory hits after an idle pause...")
    bench.add(
        Result(
            "memory_hit_after_idle",
            f"memory hit after {IDLE_SECONDS * 1e3:.0f} ms idle (not a target)",
            repeat(bench, IDLE_REPEATS, after_idle),
        )
    )


def bench_disk_hits(
    bench: Bench,
    model: Any,
    plain: Any | None,
    *,
    folder: Path | None = None,
    kind: str = "hand-built",
    key: str = "",
) -> None:
    """Disk hits in new cache objects on the populated folder, against upstream's load.

    The three take turns. A disk hit with the clip's hash remembered comes
    first in each round: the one that hashes it from scratch remembers it again.
    Without ``plain``, upstream's load is not timed.
    """
    folder = folder or bench.root / "cache"
    cases = [
        disk_hit_case(bench, model, folder, remembered=True),
        disk_hit_case(bench, model, folder, remembered=False),
    ]
    if plain is not None:
        cases.append(load_case(bench, plain))
    progress(f"disk hits ({kind} model), taking turns with upstream's Conditionals.load...")
    remembered, computed, *loads = interleave(bench, DISK_HIT_REPEATS, cases)
    load = (
        Result("upstream_conditionals_load", "upstream Conditionals.load + .to(device)", loads[0])
        if loads
        else bench.results.get("upstream_conditionals_load")
    )
    for name, label, timings, target_s in (
        (
            "disk_hit_hash_remembered",
            "clip hash remembered",
            remembered,
            DISK_HIT_REMEMBERED_TARGET_S,
        ),
        ("disk_hit_hash_computed", "clip hashed from scratch", computed, DISK_HIT_TARGET_S),
    ):
        target = f"< {fmt(target_s)}" + (f" and < load ({fmt(load.median)})" if load else "")
        result = Result(
            f"{name}{key}", f"disk hit, {kind} model, new cache, {label}", timings, target
        )
        result.met = result.median < target_s and (load is None or result.median < load.median)
        bench.add(result)
    if loads and load is not None:
        bench.add(load)


def disk_hit_case(bench: Bench, model: Any, folder: Path, *, remembered: bool) -> Case:
    """A disk hit; without ``remembered``, the folder's hash memo is emptied first (untimed)."""
    clip = str(bench.clip)
    current: list[ConditionalCache] = []

    def setup() -> Callable[[], object]:
        if not remembered:
            for memo in (folder / "hashes").glob("*.json"):
                memo.unlink()
        current[:] = [ConditionalCache(folder)]
        model.cache = current[0]
        return lambda: model.prepare_conditionals(clip)

    def check() -> None:
        expect_tiers(current[0], memory=0, disk=1, misses=0)
        expect_hashes(current[0], 0 if remembered else 1)

    return Case(setup, check)


def load_case(bench: Bench, plain: Any) -> Case:
    """Upstream ``Conditionals.load`` + ``.to(device)`` of the voice, as ``from_local`` does."""
    path = bench.root / "conds.pt"
    plain.conds.save(path)
    bench.sizes["upstream_conds_pt_bytes"] = path.stat().st_size
    device = str(bench.device)
    map_location = torch.device("cpu") if device in {"cpu", "mps"} else None

    def load() -> object:
        return Conditionals.load(path, map_location=map_location).to(device)

    return Case(lambda: load)


def bench_new_wrapper(bench: Bench, cache: ConditionalCache) -> None:
    """The first hit of a new model around the same modules: it hashes their weights."""
    clip = str(bench.clip)
    models: list[Any] = []

    def setup() -> Callable[[], object]:
        models[:] = [bench.cached_model(cache)]
        return lambda: models[0].prepare_conditionals(clip)

    hits = [cache.stats().memory_hits]

    def check() -> None:
        hits.append(cache.stats().memory_hits)
        expect(hits[-1] == hits[-2] + 1, "the first hit of a new wrapper was no memory hit")

    progress("first hit of a new model wrapper...")
    bench.add(
        Result(
            "first_hit_new_wrapper",
            "first hit, new model wrapper (hashes weights)",
            repeat(bench, NEW_WRAPPER_REPEATS, setup, check),
        )
    )
