"""Plain Chatterbox against cached-tts: N texts in one voice, timed call by call.

The plain column is what upstream ``generate(text, audio_prompt_path=voice)``
costs: it prepares the voice on every call. The cached column is the same call
on a cached model: the first call prepares (or finds the voice on disk), the
rest are hits. Both columns use the same model object and weights.

Run ``python examples/compare.py --voice me.wav --texts 4``; add
``--random-weights`` to try it offline (timings are real, the audio is noise).
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import random_model, write_voice_clip

TEXTS = [
    "It was a bright cold day in April.",
    "The clocks were striking thirteen.",
    "A voice is prepared once and reused.",
    "Only the text changes between calls.",
]


def timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Seconds that ``call(*args, **kwargs)`` takes."""
    started = time.perf_counter()
    call(*args, **kwargs)
    return time.perf_counter() - started


def compare(model: Any, voice: str, texts: list[str]) -> list[tuple[float, float]]:
    """(plain seconds, cached seconds) for each text."""
    upstream_prepare = inspect.unwrap(type(model).prepare_conditionals)

    def plain(text: str) -> None:
        upstream_prepare(model, voice)  # what upstream generate(audio_prompt_path=...) does
        model.generate(text)

    return [
        (timed(plain, text), timed(model.generate, text, audio_prompt_path=voice)) for text in texts
    ]


def main() -> None:
    """Time both columns and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", type=Path, help="reference clip (default: a synthetic one)")
    parser.add_argument("--texts", type=int, default=len(TEXTS), help="how many texts (N)")
    parser.add_argument("--cache-dir", type=Path, help="cache folder (default: a fresh one)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--random-weights", action="store_true", help="offline; audio is noise")
    args = parser.parse_args()

    workdir = Path(args.cache_dir or "compare-cache")
    cache = ConditionalCache(workdir)
    if args.random_weights:
        model = random_model(CachedChatterboxTTS, device=args.device, cache=cache)
    else:
        model = CachedChatterboxTTS.from_pretrained(args.device, cache=cache)
    voice = str(args.voice or write_voice_clip(workdir / "voice.wav", seconds=5.0, seed=1))
    texts = [TEXTS[n % len(TEXTS)] for n in range(args.texts)]

    rows = compare(model, voice, texts)
    print(f"{'call':>4}  {'plain (s)':>10}  {'cached (s)':>10}")
    for n, (plain, cached) in enumerate(rows, start=1):
        print(f"{n:>4}  {plain:>10.2f}  {cached:>10.2f}")
    plain_total = sum(p for p, _ in rows)
    cached_total = sum(c for _, c in rows)
    print(f"{'all':>4}  {plain_total:>10.2f}  {cached_total:>10.2f}")
    print(f"Speedup on this run: {plain_total / cached_total:.2f}x over {len(rows)} calls.")
    stats = model.cache.stats()
    print(f"Cache: {stats.hits} hits, {stats.misses} misses, {stats.seconds_saved:.1f} s saved.")
    if args.random_weights:
        print("(Random weights: the timings are real, the audio is noise.)")


if __name__ == "__main__":
    main()
