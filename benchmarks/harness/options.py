"""The options of ``benchmarks/bench.py``, and the usage errors it refuses."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

__all__ = ["add_arguments", "check_arguments"]


def add_arguments(parser: argparse.ArgumentParser, *, default_out: Path | None = None) -> None:
    """Add the benchmark's options to ``parser``; ``--out`` defaults to ``default_out``."""
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
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
