"""How one call is timed, and the state a run shares: the samples, the models, the results.

Cases compared with each other take turns (:func:`interleave`), so that each
sees whatever else the machine is doing; every sample counts the preemptions
and major page faults that disturbed it.
"""

from __future__ import annotations

import contextlib
import gc
import io
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from chatterbox.tts import ChatterboxTTS

from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts._keys.hashing import RACY_WINDOW_NS


@dataclass
class Timings:
    """The samples of one case, and what disturbed them.

    ``preemptions`` counts the involuntary context switches of this process
    during the timed calls: other work on the machine took its cores.
    """

    seconds: list[float] = field(default_factory=list)
    preemptions: int = 0
    major_faults: int = 0


@dataclass
class Result:
    """The timings of one case, with the target it is held to (if any)."""

    key: str
    label: str
    timings: Timings
    target: str = ""
    met: bool | None = None

    @property
    def seconds(self) -> list[float]:
        """Every sample, in seconds."""
        return self.timings.seconds

    @property
    def median(self) -> float:
        """Median of the samples, in seconds."""
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        """Fastest sample, in seconds."""
        return min(self.seconds)

    def as_json(self) -> dict[str, Any]:
        """The figures as a JSON object."""
        return {
            "label": self.label,
            "median_s": self.median,
            "min_s": self.min,
            "max_s": max(self.seconds),
            "n": len(self.seconds),
            "target": self.target or None,
            "met": self.met,
            "preemptions": self.timings.preemptions,
            "major_page_faults": self.timings.major_faults,
        }


@dataclass
class Bench:
    """The shared state of one run: the modules, the clip, the folders, the results."""

    device: torch.device
    root: Path
    clip: Path
    t3: Any
    s3gen: Any
    ve: Any
    tokenizer: Any
    results: dict[str, Result] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    setup_seconds: dict[str, float] = field(default_factory=dict)

    def sync(self) -> None:
        """Wait for the accelerator, so that a timing covers the work it queued."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def cached_model(self, cache: ConditionalCache) -> Any:
        """A new ``CachedChatterboxTTS`` around the shared modules."""
        with quiet():  # perth announces every watermarker it loads
            return CachedChatterboxTTS(
                self.t3, self.s3gen, self.ve, self.tokenizer, str(self.device), cache=cache
            )

    def plain_model(self) -> Any:
        """A new upstream ``ChatterboxTTS`` around the shared modules."""
        with quiet():
            return ChatterboxTTS(self.t3, self.s3gen, self.ve, self.tokenizer, str(self.device))

    def add(self, result: Result) -> Result:
        """Keep ``result`` and say it is done."""
        self.results[result.key] = result
        progress(f"  {result.label}: median {fmt(result.median)} (n={len(result.seconds)})")
        return result


Setup = Callable[[], Callable[[], object]]


@dataclass(frozen=True)
class Case:
    """One timed call: ``setup`` (untimed) returns it, ``check`` (untimed) follows it."""

    setup: Setup
    check: Callable[[], None] | None = None


def interleave(bench: Bench, n: int, cases: list[Case]) -> list[Timings]:
    """Time ``n`` rounds of ``cases``, one call of each per round.

    Cases compared with each other take turns, so that both see whatever else
    the machine is doing. The garbage collector is off while timing, as
    ``timeit`` does.
    """
    timings = [Timings() for _ in cases]
    gc.collect()
    gc.disable()
    try:
        for _ in range(n):
            for case, into in zip(cases, timings, strict=True):
                call = case.setup()
                bench.sync()
                before = resource.getrusage(resource.RUSAGE_SELF)
                started = time.perf_counter()
                call()
                bench.sync()
                into.seconds.append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_SELF)
                into.preemptions += after.ru_nivcsw - before.ru_nivcsw
                into.major_faults += after.ru_majflt - before.ru_majflt
                if case.check is not None:
                    case.check()
    finally:
        gc.enable()
    return timings


def repeat(bench: Bench, n: int, setup: Setup, check: Callable[[], None] | None = None) -> Timings:
    """Time ``n`` calls of one case."""
    return interleave(bench, n, [Case(setup, check)])[0]


def expect(condition: bool, message: str) -> None:
    """Stop the benchmark if it is not measuring what it claims to."""
    if not condition:
        raise RuntimeError(f"benchmark setup is wrong: {message}")


def expect_tiers(cache: ConditionalCache, *, memory: int, disk: int, misses: int) -> None:
    """Check the hit counters of ``cache``."""
    stats = cache.stats()
    found = (stats.memory_hits, stats.disk_hits, stats.misses)
    expect(
        found == (memory, disk, misses),
        f"expected (memory, disk, misses) == {(memory, disk, misses)}, got {found}",
    )


def expect_hashes(cache: ConditionalCache, computed: int) -> None:
    """Check how many files ``cache`` hashed from scratch."""
    found = cache._hasher.hashes_computed
    expect(found == computed, f"expected {computed} files hashed from scratch, got {found}")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow what upstream prints on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def progress(message: str) -> None:
    """Report progress on stderr, leaving stdout to the table."""
    print(message, file=sys.stderr, flush=True)


def wait_until_hashable(*paths: Path) -> None:
    """Sleep until none of ``paths`` changed within the racy window.

    A file changed less than ``RACY_WINDOW_NS`` before it is hashed is hashed
    again next time, and ctime counts: setting mtime back does not help.
    """
    newest = max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in paths)
    wait_ns = newest + RACY_WINDOW_NS + 100_000_000 - time.time_ns()
    if wait_ns > 0:
        progress(f"waiting {wait_ns / 1e9:.1f} s so that the hash memo trusts the files")
        time.sleep(wait_ns / 1e9)


def fmt(seconds: float) -> str:
    """A duration with a readable unit."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
