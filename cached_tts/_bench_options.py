"""The benchmark's options, shared by ``cached-tts bench`` and ``benchmarks/bench.py``.

Kept apart from :mod:`cached_tts._bench`, which imports torch and chatterbox,
so that building the command line stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "check_arguments"]


def add_arguments(parser: argparse.ArgumentParser, *, default_out: Path | None = None) -> None:
    """The benchmark's options, for ``benchmarks/bench.py`` and ``cached-tts bench``."""
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out,
        help="also write the JSON to this file"
        + (f" (default: {default_out})" if default_out else ""),
    )
    parser.add_argument("--repeat-miss", type=int, default=5, help="misses to time (default 5)")
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="also time models loaded from a checkpoint folder, from_local's included "
        "(writes a 1.6 GB random-weight checkpoint to a temporary folder)",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what the benchmark cannot do, as a usage error."""
    if args.repeat_miss < 1:
        parser.error("--repeat-miss must be at least 1")
    import torch  # only here: the command line stays light until it runs

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
