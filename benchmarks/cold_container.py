"""A cold container: a new process with an empty cache folder, getting N voices from a bucket.

Usage: python benchmarks/cold_container.py [--voices 4] [--seconds 2.5] [--runs 3]

Starts moto's S3 server on a free loopback port (in this process, which only
waits), writes short synthetic clips, and fills a bucket from one "CI" process
that prepares every voice. Then, ``--runs`` times each, starts a new process
with an empty cache folder and the real Chatterbox architecture (random
weights) that either gets every voice from the bucket
(``remote="s3://..."``) or prepares them (no remote), and times each
``prepare_conditionals`` call after the model is built. Building the model is
the same in both and not counted.

Prints a table and writes benchmarks/results/cold_container.json. Needs the
test extra (moto, s3fs): ``pip install -e '.[test]'``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results")
KEYS = {"AWS_ACCESS_KEY_ID": "benchmark", "AWS_SECRET_ACCESS_KEY": "benchmark"}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def container(folder: Path, remote: str | None, clips: list[str]) -> None:
    """One new process: build the model, then get every voice; print the timings."""
    from cached_tts import CachedChatterboxTTS, ConditionalCache
    from cached_tts.testing import random_components, random_model

    model = random_model(
        CachedChatterboxTTS,
        components=random_components("english", seed=0),
        cache=ConditionalCache(folder, remote=remote),
    )
    records = []
    for clip in clips:
        before = model.cache.stats()
        started = time.perf_counter()
        model.prepare_conditionals(clip, exaggeration=0.5)
        seconds = time.perf_counter() - started
        after = model.cache.stats()
        tier = "remote hit" if after.remote_hits > before.remote_hits else "miss"
        records.append({"clip": Path(clip).name, "tier": tier, "seconds": seconds})
    print(json.dumps(records))


def run_container(folder: Path, remote: str | None, clips: list[str]) -> list[dict[str, object]]:
    """Start one container process and wait for its timings."""
    command = [sys.executable, __file__, "--container", str(folder), "--clips", *clips]
    if remote is not None:
        command += ["--remote", remote]
    out = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout
    records: list[dict[str, object]] = json.loads(out.strip().splitlines()[-1])
    return records


def main() -> None:
    """Run the benchmark, or one container of it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.5, help="length of each clip")
    parser.add_argument("--runs", type=int, default=3, help="new processes of each kind")
    parser.add_argument("--container", help=argparse.SUPPRESS)
    parser.add_argument("--remote", help=argparse.SUPPRESS)
    parser.add_argument("--clips", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.container is not None:
        container(Path(args.container), args.remote, args.clips)
        return
    run_benchmark(args)


def run_benchmark(args: argparse.Namespace) -> None:
    """Clips, the S3 server, the CI process, the containers, and the report."""
    import boto3
    from moto.server import ThreadedMotoServer

    from cached_tts.testing import write_voice_clip

    started = time.perf_counter()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({**KEYS, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="voices")
        url = "s3://voices/prod"
        with tempfile.TemporaryDirectory(prefix="cached-tts-cold-") as tmp:
            folder = Path(tmp)
            clips = [
                str(write_voice_clip(folder / f"voice-{n}.wav", seconds=args.seconds, seed=n))
                for n in range(args.voices)
            ]
            warmed = run_container(folder / "ci", url, clips)
            runs: dict[str, list[list[dict[str, object]]]] = {"bucket": [], "prepare": []}
            for n in range(args.runs):
                runs["bucket"].append(run_container(folder / f"bucket-{n}", url, clips))
                runs["prepare"].append(run_container(folder / f"prepare-{n}", None, clips))
    finally:
        server.stop()
    report(args, warmed, runs, time.perf_counter() - started)


def report(
    args: argparse.Namespace,
    warmed: list[dict[str, object]],
    runs: dict[str, list[list[dict[str, object]]]],
    wall: float,
) -> None:
    """Print a table and write benchmarks/results/cold_container.json."""

    def ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 2)

    def summary(kind: str) -> dict[str, object]:
        containers = runs[kind]
        seconds = [[float(r["seconds"]) for r in c] for c in containers]  # type: ignore[arg-type]
        return {
            "tiers": sorted({str(r["tier"]) for c in containers for r in c}),
            "first_voice_median_ms": ms([s[0] for s in seconds]),
            "later_voices_median_ms": ms([x for s in seconds for x in s[1:]])
            if args.voices > 1
            else None,
            "all_voices_median_ms": ms([sum(s) for s in seconds]),
        }

    result = {
        "voices": args.voices,
        "clip_seconds": args.seconds,
        "runs": args.runs,
        "ci_preparations": sum(r["tier"] == "miss" for r in warmed),
        "from_bucket": summary("bucket"),
        "preparing": summary("prepare"),
        "wall_seconds": round(wall, 1),
        # The machine may be shared: how busy it was, over the last 1, 5 and 15 minutes.
        "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    bucket, prepare = result["from_bucket"], result["preparing"]
    print(
        f"a new process with an empty folder, {args.voices} voices of {args.seconds} s, "
        f"{args.runs} runs each (medians, model build not counted)"
    )
    print(f"{'':34}{'from the bucket':>16}{'preparing':>12}")
    for field, label in (
        ("first_voice_median_ms", "first voice in the process, ms"),
        ("later_voices_median_ms", "each later voice, ms"),
        ("all_voices_median_ms", f"all {args.voices} voices, ms"),
    ):
        print(f"  {label:<32}{bucket[field]!s:>16}{prepare[field]!s:>12}")  # type: ignore[index]
    print(f"wall time: {result['wall_seconds']} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cold_container.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
