"""The ``cached-tts`` command (also ``python -m cached_tts``).

Exit codes: 0 on success, 1 on a failure the command reports in one line
(``cached-tts: error: ...``, never a traceback), 2 on bad usage.

* :mod:`._cache_commands`: ls, stats, verify, prune, clear (no model loaded);
* :mod:`._voice_commands`: warm, say (load a model);
* ``demo``: :mod:`cached_tts._demo`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from cached_tts import _bench_options
from cached_tts._cli import _cache_commands, _voice_commands
from cached_tts._cli._options import add_remote, remote_of
from cached_tts._cli._redis import warn_if_unreachable
from cached_tts._exceptions import CachedTTSError

__all__ = ["main"]

logger = logging.getLogger("cached_tts")

_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def _log_to_stderr(target: logging.Logger) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cached-tts",
        description="Chatterbox TTS with cached voice preparations.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the cache does")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="measure what the cache saves on this machine",
        description=(
            "Load Chatterbox (real weights when they can be had, otherwise the real "
            "architecture with random weights, and say so) and time plain preparation, "
            "misses, hits and one generate."
        ),
    )
    demo.add_argument("--voice", type=Path, help="reference clip (default: a synthetic one)")
    demo.add_argument("--cache-dir", type=Path, help="cache folder (default: a temporary one)")
    add_remote(demo, use="; an unreachable one is skipped with a warning")
    demo.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    demo.add_argument("--out", type=Path, default=Path("demo.wav"), help="WAV to write")
    demo.add_argument("--random-weights", action="store_true", help="skip the real weights")
    demo.add_argument("--no-generate", action="store_true", help="only time preparations")

    run = commands.add_parser(
        "run",
        help="run a Python script with chatterbox's voice preparations cached",
        description=(
            "Run an unmodified script as `python script.py args...` would, with "
            "cached_tts.enable() in force. CACHED_TTS_DISABLE=1 turns caching off."
        ),
    )
    run.add_argument("--cache-dir", type=Path, help="cache folder (default: $CACHED_TTS_CACHE_DIR)")
    add_remote(run, use=": the script's default cache uses it")
    run.add_argument("script", help="the script to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    bench = commands.add_parser(
        "bench",
        help="time misses, hits and upstream's Conditionals.load side by side",
        description=(
            "Build the full Chatterbox architecture with random weights and time a miss, "
            "memory and disk hits, upstream's Conditionals.load and first hits (about a minute)."
        ),
    )
    _bench_options.add_arguments(bench)
    bench.set_defaults(run=lambda args: _run_bench(bench, args))
    _voice_commands.add_parsers(commands)
    _cache_commands.add_parsers(commands)
    return parser


def _run_bench(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    _bench_options.check_arguments(parser, args)
    from cached_tts import _bench

    return _bench.execute(args)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        from cached_tts._runner import run_script

        # The script owns the root logger, as it would without us.
        if args.verbose:
            _log_to_stderr(logging.getLogger("cached_tts"))
        # "" (--remote '') is passed on: it turns the variable's Redis off.
        return run_script(args.script, args.args, cache_dir=args.cache_dir, remote=args.remote)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format=_LOG_FORMAT,
    )
    logging.getLogger("cached_tts").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # Chatterbox's dependencies warn about their own deprecations on every run.
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category)
    try:
        if args.command == "demo":
            from cached_tts._demo import run_demo

            remote = remote_of(args)
            if remote is not None:
                warn_if_unreachable(remote)
            return run_demo(
                voice=args.voice,
                cache_dir=args.cache_dir,
                remote=remote,
                device=args.device,
                out=args.out,
                random_weights=args.random_weights,
                generate=not args.no_generate,
            )
        code: int = args.run(args)
    except (CachedTTSError, OSError) as exc:
        print(f"cached-tts: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cached-tts: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # users get one line; -v logs the traceback
        logger.debug("Unexpected failure", exc_info=True)
        print(
            f"cached-tts: error: {type(exc).__name__}: {exc} (run with -v for details)",
            file=sys.stderr,
        )
        return 1
    return code
