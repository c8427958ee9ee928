"""How long a voice preparation takes with cached-tts, tier by tier.

Builds the full Chatterbox architecture (the 520M-parameter T3, ``S3Gen`` and
``VoiceEncoder``) with seeded random weights, so it runs offline: preparing a
voice costs what it costs with the real weights. It writes a 10 s reference
clip and times, on a warm process:

* a miss (an empty cache folder), against upstream's plain preparation;
* a memory hit, back to back and after an idle pause (as between requests);
* a disk hit in a new ``ConditionalCache`` on a populated folder (what a new
  process sees), with the clip's hash remembered in the folder and without;
* upstream's ``Conditionals.load`` of the same voice saved with ``save``;
* the first hit of a new model wrapper, which hashes the preparation weights;
* with ``--checkpoint``, the first hit of a model loaded from a checkpoint
  folder whose file hashes the cache folder already remembers; then memory
  and disk hits of a model loaded as users load one, with ``from_local`` from
  a random-weight checkpoint (:func:`cached_tts.testing.write_checkpoint`,
  1.6 GB written into the run's temporary folder and removed afterwards).

The first preparation in a process loads librosa's resampler and warms torch;
it is reported on its own and kept out of every other figure.

Run it as ``cached-tts bench`` or, from the repository root::

    .venv/bin/python benchmarks/bench.py
    .venv/bin/python benchmarks/bench.py --checkpoint --repeat-miss 3
    .venv/bin/python benchmarks/bench.py --device cuda --out /somewhere/gpu.json

It prints a table (``--json``: the figures as JSON instead: median, min, max
and count, in seconds, with a description of the machine). ``benchmarks/bench.py``
also writes them to ``benchmarks/results/bench.json`` unless ``--out`` says
otherwise. About 45 s on two idle CPU cores, with ``--checkpoint``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from chatterbox.models.s3gen import S3Gen
from chatterbox.models.t3 import T3
from chatterbox.models.voice_encoder import VoiceEncoder
from chatterbox.tts import ChatterboxTTS, Conditionals
from safetensors.torch import save_file

import cached_tts
from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts._keys.fingerprint import (
    CHECKPOINT_ATTR,
    CheckpointRead,
    checkpoint_signatures,
    remember_checkpoint_fingerprint,
)
from cached_tts._keys.hashing import RACY_WINDOW_NS
from cached_tts.testing import _char_tokenizer, write_checkpoint, write_voice_clip

CLIP_SECONDS = 10.0
SEED = 0
MEMORY_HIT_REPEATS = 500
DISK_HIT_REPEATS = 200
NEW_WRAPPER_REPEATS = 5
CHECKPOINT_REPEATS = 10
# A server between requests: caches and torch's thread pool have gone cold.
IDLE_SECONDS = 0.1
IDLE_REPEATS = 20

MEMORY_HIT_TARGET_S = 30e-6
#: A disk hit in a new cache object: with the clip's hash remembered, and hashed from scratch.
DISK_HIT_REMEMBERED_TARGET_S = 0.5e-3
DISK_HIT_TARGET_S = 1e-3


# -- timing ---------------------------------------------------------------------


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


# -- setup ----------------------------------------------------------------------


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


# -- the cases --------------------------------------------------------------------


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


# -- report ---------------------------------------------------------------------


def fmt(seconds: float) -> str:
    """A duration with a readable unit."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def machine(device: torch.device) -> dict[str, Any]:
    """What ran the benchmark."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cached_tts": cached_tts.__version__,
        "device": str(device),
        "load_average_at_start": load_average(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other work on the machine skews timings."""
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def table(bench: Bench, info: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    gpu = f", {info['gpu']}" if "gpu" in info else ""
    where = (
        f"cached-tts {info['cached_tts']} on {info['cpu']} ({info['cores']} cores, "
        f"{info['torch_threads']} torch threads), torch {info['torch']}, "
        f"device {info['device']}{gpu}"
    )
    what = (
        f"{CLIP_SECONDS:.0f} s clip, full architecture (T3 with "
        f"{bench.sizes['t3_parameters'] / 1e6:.0f}M parameters), random weights"
    )
    load = f"load average {info['load_average_at_start']} at start, {load_average()} at end"
    lines = [where, what, load, ""]
    width = max(len(r.label) for r in bench.results.values())
    header = f"{'case':<{width}}  {'median':>10}  {'min':>10}  {'n':>4}  {'preempt':>7}  target"
    lines += [header, "-" * (len(header) + 28)]
    for r in bench.results.values():
        verdict = "" if r.met is None else ("  ok" if r.met else "  MISSED")
        lines.append(
            f"{r.label:<{width}}  {fmt(r.median):>10}  {fmt(r.min):>10}  "
            f"{len(r.seconds):>4}  {r.timings.preemptions:>7}  {r.target}{verdict}"
        )
    lines += [
        "",
        "preempt: involuntary context switches during the timed calls, from other work",
        "on the machine; where they are many, the median measures the machine's load.",
        "",
        "sizes:",
    ]
    lines += [f"  {name}: {value:,}" for name, value in bench.sizes.items()]
    return "\n".join(lines)


def report(bench: Bench, info: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The figures, the machine and the settings, ready for JSON."""
    return {
        "when": datetime.now(tz=timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "settings": {
            "clip_seconds": CLIP_SECONDS,
            "repeat_miss": args.repeat_miss,
            "memory_hit_repeats": MEMORY_HIT_REPEATS,
            "disk_hit_repeats": DISK_HIT_REPEATS,
            "new_wrapper_repeats": NEW_WRAPPER_REPEATS,
            "idle_seconds": IDLE_SECONDS,
            "idle_repeats": IDLE_REPEATS,
            "checkpoint_repeats": CHECKPOINT_REPEATS,
            "checkpoint": args.checkpoint,
        },
        "targets": {
            "memory_hit_median_s": MEMORY_HIT_TARGET_S,
            "disk_hit_median_s": DISK_HIT_TARGET_S,
            "disk_hit_faster_than_upstream_load": True,
        },
        "results": {key: r.as_json() for key, r in bench.results.items()},
        "sizes_bytes": bench.sizes,
        "setup_seconds": bench.setup_seconds,
        "load_average_at_end": load_average(),
    }


# -- main -------------------------------------------------------------------------


def run(args: argparse.Namespace, root: Path) -> tuple[Bench, dict[str, Any]]:
    """Every case, in an order where each one finds what it needs."""
    device = torch.device(args.device)
    info = machine(device)
    bench = build(device, root)
    plain = bench_first_call(bench)
    model = bench.cached_model(ConditionalCache(cache_dir=None))
    bench_miss(bench, plain, model, args.repeat_miss)
    warm = populate(bench, model)
    bench_memory_hit(bench, model, warm)
    bench_disk_hits(bench, model, plain)
    bench_new_wrapper(bench, warm)
    if args.checkpoint:
        bench_checkpoint(bench)
        bench_checkpoint_loaded(bench)
    return bench, info


def execute(args: argparse.Namespace) -> int:
    """Run the benchmark; print the table (or JSON) and write the JSON if asked."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cached-tts-bench-") as folder:
        bench, info = run(args, Path(folder))
    bench.setup_seconds["total_run"] = time.perf_counter() - started
    figures = json.dumps(report(bench, info, args), indent=2) + "\n"
    print(figures if args.json else table(bench, info))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(figures)
        progress(f"wrote {args.out} (ran {bench.setup_seconds['total_run']:.0f} s after imports)")
    return 0
