"""The core benchmark: ``cached-tts bench`` run from the repository.

See :mod:`cached_tts._bench` for what it measures. Usage::

    .venv/bin/python benchmarks/bench.py [--checkpoint] [--json] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

# Chatterbox's dependencies warn about their own deprecations on import.
for category in (DeprecationWarning, FutureWarning, UserWarning):
    warnings.filterwarnings("ignore", category=category)

from cached_tts import _bench, _bench_options  # noqa: E402 -- after the filters


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and keep its figures in benchmarks/results/bench.json."""
    parser = argparse.ArgumentParser(description=(_bench.__doc__ or "").split("\n\n")[0])
    _bench_options.add_arguments(
        parser, default_out=Path(__file__).parent / "results" / "bench.json"
    )
    args = parser.parse_args(argv)
    _bench_options.check_arguments(parser, args)
    return _bench.execute(args)


if __name__ == "__main__":
    sys.exit(main())
