"""Where a memory hit's time goes: each part of one, timed alone.

Usage: python benchmarks/hit_parts.py [--repeat 20000] [--out PATH]

Builds a hand-built model (the real preparation modules, a 1-layer T3: a hit
never touches T3's weights), prepares a 10 s clip once, then times with
``timeit`` (minimum over 7 runs of ``--repeat`` calls, garbage collector off)
the whole repeated ``prepare_conditionals`` call and the parts it is made of.
What the parts leave of the whole is the wrapper, the binding of the
arguments, the model's lock and freeing the voice the model held before.

Prints a Markdown table and keeps the figures in benchmarks/results/hit_parts.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import timeit
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

for category in (DeprecationWarning, FutureWarning, UserWarning):
    warnings.filterwarnings("ignore", category=category)

import torch  # noqa: E402 -- after the filters

from cached_tts import ConditionalCache  # noqa: E402
from cached_tts._entries.copies import fresh_copies  # noqa: E402
from cached_tts._entries.entry import conditionals_from_entry  # noqa: E402
from cached_tts._keys.key import settings_state  # noqa: E402
from cached_tts._wrapping.voice import _KNOWN_ATTR  # noqa: E402
from cached_tts.testing import random_model, write_voice_clip  # noqa: E402

RESULTS = Path(__file__).with_name("results")


def best_of(call: Callable[[], object], repeat: int) -> float:
    """Microseconds per call: the fastest of 7 runs of ``repeat`` calls."""
    gc.collect()
    gc.disable()
    try:
        return min(timeit.repeat(call, number=repeat, repeat=7)) / repeat * 1e6
    finally:
        gc.enable()


def measure(repeat: int, folder: Path) -> dict[str, float]:
    """Time a whole memory hit and each of its parts, in µs."""
    clip = str(write_voice_clip(folder / "voice.wav", seconds=10, seed=1))
    os.utime(clip, (1, 1))  # old enough for its hash to be remembered (not racy)
    cache = ConditionalCache(folder / "cache")
    model = random_model(cache=cache)
    model.prepare_conditionals(clip)
    ((_, key),) = model.__dict__[_KNOWN_ATTR].values()
    entry = cache.from_memory(key)
    if entry is None:
        raise RuntimeError("benchmark setup is wrong: the voice is not in memory")
    conditionals_class = type(model.conds)
    t3_copiers = entry.copiers("t3")
    gen_copiers = entry.copiers("gen")
    parts = {
        "whole memory hit": lambda: model.prepare_conditionals(clip),
        "one os.stat of the clip": lambda: os.stat(clip),
        "has the model changed? (settings_state)": lambda: settings_state(model),
        "memory-tier lookup and counters": lambda: cache.from_memory(key),
        "copying the t3 tensors": lambda: fresh_copies(t3_copiers, model.device),
        "copying the gen tensors (prompt_feat is 160 KB)": lambda: fresh_copies(
            gen_copiers, model.device
        ),
        "the whole restore (copies, exaggeration, T3Cond, Conditionals)": lambda: (
            conditionals_from_entry(entry, 0.5, model.device, conditionals_class)
        ),
    }
    return {name: best_of(call, repeat) for name, call in parts.items()}


def table(timings: dict[str, float]) -> str:
    """A Markdown table of ``timings``, with what the parts leave of the whole."""
    whole = timings["whole memory hit"]
    restore = timings["the whole restore (copies, exaggeration, T3Cond, Conditionals)"]
    counted = restore + sum(
        timings[name]
        for name in (
            "one os.stat of the clip",
            "has the model changed? (settings_state)",
            "memory-tier lookup and counters",
        )
    )
    rows = [f"| {name} | {value:.1f} |" for name, value in timings.items()]
    rows.append(
        f"| the rest: wrapper, binding, lock, freeing the old voice | {whole - counted:.1f} |"
    )
    return "\n".join(["| part | µs |", "|---|---|", *rows])


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, keep the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20000, help="calls per timed run")
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "hit_parts.json", help="where to keep the figures"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="cached-tts-hit-parts-") as folder:
        timings = measure(args.repeat, Path(folder))
    print(table(timings))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    args.out.write_text(
        json.dumps({"machine": machine, "repeat": args.repeat, "us": timings}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
