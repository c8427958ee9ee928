"""A fleet of worker processes, each with its own cache folder, sharing one Redis.

Usage: python benchmarks/fleet.py [--workers 3] [--voices 4] [--seconds 2.5]

Starts redis-server on a free loopback port, writes short synthetic clips, and
starts the workers together; each prepares every voice (starting at a
different one) with the real Chatterbox architecture and random weights. Then
each worker times a disk hit (a fresh cache object on its own folder) and a
Redis hit (a fresh cache object on an empty folder) for every voice.

Prints a table and writes benchmarks/results/fleet.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results")
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A throwaway redis-server on loopback, and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), *NO_PERSISTENCE],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return server, f"redis://127.0.0.1:{port}/0"


def worker(index: int, folder: Path, url: str, clips: list[str]) -> None:
    """One machine of the fleet: prepare every voice, then time hits."""
    import torch

    from cached_tts import CachedChatterboxTTS, ConditionalCache
    from cached_tts.testing import random_components, random_model

    # Several workers share the cores: one thread each avoids oversubscription.
    torch.set_num_threads(1)
    model = random_model(
        CachedChatterboxTTS,
        components=random_components("english", seed=0),
        cache=ConditionalCache(folder / f"machine-{index}", remote=url),
    )
    (folder / f"ready-{index}").touch()
    while not (folder / "go").exists():
        time.sleep(0.01)
    order = clips[index % len(clips) :] + clips[: index % len(clips)]
    records = [timed(model, clip, "race") for clip in order]
    # Now warm and alone: fresh cache objects (empty memory) on a disk hit,
    # a Redis hit (empty folder), and one miss (no Redis, empty folder).
    for clip in clips:
        model.cache = ConditionalCache(folder / f"machine-{index}", remote=None)
        records.append(timed(model, clip, "warm"))
        model.cache = ConditionalCache(folder / f"empty-{index}-{Path(clip).stem}", remote=url)
        records.append(timed(model, clip, "warm"))
    model.cache = ConditionalCache(folder / f"alone-{index}", remote=None)
    records.append(timed(model, order[0], "warm"))
    print(json.dumps(records))


def timed(model: object, clip: str, phase: str) -> dict[str, object]:
    """One lookup: which tier served it, and how long it took."""
    cache = model.cache  # type: ignore[attr-defined]
    before = cache.stats()
    started = time.perf_counter()
    model.prepare_conditionals(clip, exaggeration=0.5)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    after = cache.stats()
    tier = next(
        name
        for name in ("misses", "remote_hits", "disk_hits", "memory_hits")
        if getattr(after, name) > getattr(before, name)
    )
    return {"clip": Path(clip).name, "phase": phase, "tier": tier, "seconds": seconds}


def main() -> None:
    """Run the fleet, or one worker of it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--voices", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.5, help="length of each clip")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        clips = sorted(str(p) for p in Path(args.folder, "clips").glob("*.wav"))
        worker(args.worker, Path(args.folder), args.url, clips)
        return
    run_fleet(args)


def run_fleet(args: argparse.Namespace) -> None:
    """Clips, a Redis server, the workers, and the report."""
    from cached_tts.testing import write_voice_clip

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cached-tts-fleet-") as tmp:
        folder = Path(tmp)
        (folder / "clips").mkdir()
        for n in range(args.voices):
            write_voice_clip(folder / "clips" / f"voice-{n}.wav", seconds=args.seconds, seed=n)
        server, url = start_redis(folder)
        try:
            records = run_workers(args.workers, folder, url)
        finally:
            server.terminate()
            server.wait()
    report(args, records, time.perf_counter() - started)


def run_workers(count: int, folder: Path, url: str) -> list[dict[str, object]]:
    """Start the workers together and collect what each one timed."""
    command = [sys.executable, __file__, "--folder", str(folder), "--url", url]
    workers = [
        subprocess.Popen([*command, "--worker", str(n)], stdout=subprocess.PIPE, text=True)
        for n in range(count)
    ]
    while len(list(folder.glob("ready-*"))) < count:
        if any(w.poll() is not None for w in workers):
            sys.exit("a worker failed to start")
        time.sleep(0.05)
    (folder / "go").touch()
    records = []
    for w in workers:
        out, _ = w.communicate()
        if w.returncode != 0:
            sys.exit(f"a worker failed with exit status {w.returncode}")
        records.extend(json.loads(out.strip().splitlines()[-1]))
    return records


def report(args: argparse.Namespace, records: list[dict[str, object]], wall: float) -> None:
    """Print a table and write benchmarks/results/fleet.json."""
    tiers = {"misses": "miss", "remote_hits": "Redis hit", "disk_hits": "disk hit"}

    def summary(phase: str) -> dict[str, dict[str, float | int | None]]:
        out: dict[str, dict[str, float | int | None]] = {}
        for tier in tiers:
            found = [
                float(r["seconds"])  # type: ignore[arg-type]
                for r in records
                if r["tier"] == tier and r["phase"] == phase
            ]
            median = round(statistics.median(found) * 1000, 2) if found else None
            out[tier] = {"lookups": len(found), "median_ms": median}
        return out

    result = {
        "workers": args.workers,
        "voices": args.voices,
        "clip_seconds": args.seconds,
        # The race: every worker asks for every voice at once, in cold processes.
        "preparations": sum(r["tier"] == "misses" and r["phase"] == "race" for r in records),
        "race": summary("race"),
        # Afterwards, warm and one at a time, on cache objects with empty memory.
        "warm": summary("warm"),
        "wall_seconds": round(wall, 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(f"{args.workers} workers x {args.voices} voices, one Redis, separate disk folders")
    print(f"preparations: {result['preparations']} (without Redis: {args.workers * args.voices})")
    for phase, title in (("race", "race, cold processes at once"), ("warm", "warm, one at a time")):
        print(f"{title:<32}{'lookups':>8}{'median ms':>12}")
        for tier, label in tiers.items():
            row = result[phase][tier]  # type: ignore[index]
            print(f"  {label:<30}{row['lookups']:>8}{row['median_ms']!s:>12}")
    print(f"wall time: {result['wall_seconds']} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fleet.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
