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

It measures a checkout, so it lives here and not in the package: run it from
the repository root (``make bench`` runs the first line)::

    .venv/bin/python benchmarks/bench.py --checkpoint
    .venv/bin/python benchmarks/bench.py --checkpoint --repeat-miss 3
    .venv/bin/python benchmarks/bench.py --device cuda --out /somewhere/gpu.json

It prints a table (``--json``: the figures as JSON instead: median, min, max
and count, in seconds, with a description of the machine), and writes them to
``benchmarks/results/bench.json`` unless ``--out`` says otherwise. About 45 s
on two idle CPU cores, with ``--checkpoint``. The harness it runs is in
``benchmarks/harness/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

# Chatterbox's dependencies warn about their own deprecations on import.
for category in (DeprecationWarning, FutureWarning, UserWarning):
    warnings.filterwarnings("ignore", category=category)

# The imports come after the filters.
import torch  # noqa: E402
from harness import options  # noqa: E402
from harness.cases import (  # noqa: E402
    bench_disk_hits,
    bench_first_call,
    bench_memory_hit,
    bench_miss,
    bench_new_wrapper,
    build,
    populate,
)
from harness.checkpoint import bench_checkpoint, bench_checkpoint_loaded  # noqa: E402
from harness.report import machine, report, table  # noqa: E402
from harness.timing import Bench, progress  # noqa: E402

from cached_tts import ConditionalCache  # noqa: E402

DEFAULT_OUT = Path(__file__).parent / "results" / "bench.json"


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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and keep its figures in benchmarks/results/bench.json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    options.add_arguments(parser, default_out=DEFAULT_OUT)
    args = parser.parse_args(argv)
    options.check_arguments(parser, args)
    return execute(args)


if __name__ == "__main__":
    sys.exit(main())
