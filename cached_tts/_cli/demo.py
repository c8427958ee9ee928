"""The demo: what the cache saves, measured on this machine.

It loads Chatterbox (real weights when they can be had, otherwise the real
architecture with random weights, and it says which), then times a plain
preparation, a miss, a memory hit, a disk hit from a new cache object, an
exaggeration change, and one ``generate`` whose voice comes from the cache.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cached_tts._cache.cache import ConditionalCache
from cached_tts._cli.loading import hub_reachable, load_model
from cached_tts._cli.progress import quiet_upstream
from cached_tts._exceptions import WeightsUnavailableError
from cached_tts._tiers.redis.settings import redacted

__all__ = ["run_demo"]

logger = logging.getLogger("cached_tts")


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _load(device: str, cache: ConditionalCache, *, random_weights: bool) -> tuple[Any, bool]:
    """The model, and whether it has random weights."""
    if not random_weights:
        if not hub_reachable():
            print("The Hugging Face Hub is unreachable: looking for weights cached locally.")
        try:
            with quiet_upstream():
                return load_model("english", device=device, cache=cache), False
        except WeightsUnavailableError as exc:
            logger.debug("Real weights unavailable: %s", exc)
            print(
                "No Chatterbox weights here: falling back to the real architecture with "
                "RANDOM weights (cached_tts.testing). Timings are real; the audio is noise."
            )
    with quiet_upstream():
        return load_model("english", device=device, random_weights=True, cache=cache), True


def run_demo(
    *,
    voice: Path | None,
    cache_dir: Path | None,
    device: str,
    remote: str | None = None,
    out: Path,
    random_weights: bool,
    generate: bool,
) -> int:
    """Run the demo and print what it measured; returns an exit code.

    ``remote`` names shared tiers (URLs separated by commas), or ``None``. Without
    ``cache_dir``, the cache lives in a temporary folder, removed at the end.
    """
    # The synthetic clip and the default cache folder live here, and go with it.
    with tempfile.TemporaryDirectory(prefix="cached-tts-demo-") as workdir:
        return _run_demo(
            Path(workdir),
            voice=voice,
            folder=cache_dir or Path(workdir) / "cache",
            device=device,
            remote=remote,
            out=out,
            random_weights=random_weights,
            generate=generate,
        )


def _run_demo(
    workdir: Path,
    *,
    voice: Path | None,
    folder: Path,
    device: str,
    remote: str | None,
    out: Path,
    random_weights: bool,
    generate: bool,
) -> int:
    from cached_tts.testing import write_voice_clip

    cache = ConditionalCache(folder, remote=remote)
    model, is_random = _load(device, cache, random_weights=random_weights)
    clip = str(voice or write_voice_clip(workdir / "voice.wav", seconds=5.0, seed=1))
    shared = "" if remote is None else f"\nShared tiers: {redacted(remote)}"
    print(f"Voice clip: {clip}\nCache folder: {folder}{shared}\n")

    # The upstream function itself, on the same model: no cache at all.
    uncached = inspect.unwrap(type(model).prepare_conditionals)
    rows = [
        ("plain prepare_conditionals, first call", _timed(lambda: uncached(model, clip))),
        ("plain prepare_conditionals, again", _timed(lambda: uncached(model, clip))),
        ("cached: miss (prepares and stores)", _timed(lambda: model.prepare_conditionals(clip))),
        ("cached: memory hit", _timed(lambda: model.prepare_conditionals(clip))),
        (
            "cached: other exaggeration, no preparation",
            _timed(lambda: model.prepare_conditionals(clip, exaggeration=0.9)),
        ),
    ]
    model.cache = ConditionalCache(folder, remote=remote)  # how a new process starts
    rows.append(
        ("cached: disk hit, new cache object", _timed(lambda: model.prepare_conditionals(clip)))
    )
    model.cache = cache
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds * 1000:10.2f} ms")
    if generate:
        _generate(model, clip, out, is_random=is_random)
    stats = cache.stats()
    redis = f"{stats.remote_hits} remote hits, " if remote else ""
    print(
        f"\nCache: {_count(stats.misses, 'miss', 'misses')}, {stats.memory_hits} memory hits, "
        f"{redis}{stats.seconds_saved:.2f} s of preparation saved; "
        f"{_count(stats.disk_entries, 'entry', 'entries')}, "
        f"{stats.disk_bytes / 1000:.0f} KB on disk."
    )
    if is_random:
        print("(Random weights: load real ones with from_pretrained when online.)")
    return 0


def _generate(model: Any, clip: str, out: Path, *, is_random: bool) -> None:
    import torchaudio

    print("\nGenerating one sentence in the cached voice...")
    started = time.perf_counter()
    with quiet_upstream():
        wav = model.generate("Hello from cached TTS.", audio_prompt_path=clip)
    seconds = time.perf_counter() - started
    torchaudio.save(str(out), wav, model.sr)
    note = " (noise: random weights, capped length)" if is_random else ""
    print(f"  generate took {seconds:.1f} s, with no preparation; wrote {out}{note}")


def _count(n: int, one: str, many: str) -> str:
    from cached_tts._cache.display import plural

    return plural(n, one, many)
