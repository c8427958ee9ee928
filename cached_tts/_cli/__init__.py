"""The ``cached-tts`` command (also ``python -m cached_tts``).

Exit codes: 0 on success, 1 on a failure the command reports in one line
(``cached-tts: error: ...``, never a traceback), 2 on bad usage, 130 after
Ctrl-C (one line, wherever it lands, even while torch imports).

* :mod:`.cache_commands`: ls, stats, and the parsers of verify, prune, clear
  (:mod:`.tidy_commands`) and rm (no model loaded);
* :mod:`.voice_commands`: warm, say (load a model);
* ``demo``: :mod:`cached_tts._cli.demo`.

Building the parser imports neither torch nor chatterbox: ``--help``,
``--version``, ``ls`` and ``stats`` stay fast. Each command imports what it
needs when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]

_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def _version() -> str:
    """The versions of cached-tts, of the chatterbox code, and of Python.

    Names the distribution that ships the ``chatterbox`` package this
    process imports: ``chatterbox-tts``, or a fork installed under another
    name (which reuses the module name). Reads metadata only, never imports
    chatterbox.
    """
    import platform

    from cached_tts._version import __version__

    return (
        f"cached-tts {__version__} (chatterbox: {_chatterbox_distribution()}, "
        f"Python {platform.python_version()})"
    )


def _chatterbox_distribution() -> str:
    """``"<distribution> <version>"`` of the installed ``chatterbox`` package, or why none."""
    import importlib.metadata

    from cached_tts._keys import versions as _versions

    package = _versions._chatterbox_folder()  # the key's own lookup
    if package is None:
        return "not installed"
    dist = _versions._distribution_providing(package)
    if dist is not None:
        return f"{dist.metadata['Name']} {dist.version}"
    # A folder on sys.path: which distributions say they ship the name, if any.
    names = importlib.metadata.packages_distributions().get("chatterbox", [])
    shipped = f"; installed distributions naming it: {', '.join(names)}" if names else ""
    return f"from {package}, no installed distribution{shipped}"


class _VersionAction(argparse.Action):
    """``--version``, worked out only when asked (it reads installed metadata)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="show the versions of cached-tts, chatterbox (the distribution that ships it) "
            "and Python, and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,  # noqa: ARG002 -- argparse's signature
        values: object,  # noqa: ARG002
        option_string: str | None = None,  # noqa: ARG002
    ) -> None:
        print(_version())
        parser.exit()


def _add_verbose(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log what the cache does"
    )


def _parser() -> argparse.ArgumentParser:
    from cached_tts._cli import cache_commands as _cache_commands
    from cached_tts._cli import run_command as _run_command
    from cached_tts._cli import voice_commands as _voice_commands
    from cached_tts._cli.options import add_remote

    parser = argparse.ArgumentParser(
        prog="cached-tts",
        description="Chatterbox TTS with cached voice preparations.",
    )
    _add_verbose(parser, default=False)
    parser.add_argument("--version", action=_VersionAction)
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
    demo.add_argument(
        "--cache-dir", type=Path, help="cache folder (default: a temporary one, removed after)"
    )
    add_remote(demo, use="; an unreachable one is skipped with a warning")
    demo.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    demo.add_argument("--out", type=Path, default=Path("demo.wav"), help="WAV to write")
    demo.add_argument("--random-weights", action="store_true", help="skip the real weights")
    demo.add_argument("--no-generate", action="store_true", help="only time preparations")

    _run_command.add_parser(commands)
    _voice_commands.add_parsers(commands)
    _cache_commands.add_parsers(commands)
    # -v where users type it: before or after the command. SUPPRESS keeps a
    # subcommand from resetting what was given before it.
    for sub in commands.choices.values():
        _add_verbose(sub, default=argparse.SUPPRESS)
    return parser


# The benchmark measures a checkout (benchmarks/bench.py), so the wheel holds none;
# those who type the command it once was get told where it went.
_BENCH_MOVED = (
    "cached-tts: error: bench is no longer a command: the benchmark measures a checkout, "
    "so run `python benchmarks/bench.py` (or `make bench`) from a clone of cached-tts; "
    "`cached-tts demo` shows what the cache saves on this machine"
)


def _asks_for_bench(argv: list[str]) -> bool:
    """Whether the command line asks for the ``bench`` command of old (after any ``-v``).

    >>> _asks_for_bench(["-v", "bench", "--checkpoint"]), _asks_for_bench(["ls"])
    (True, False)
    """
    words = [word for word in argv if word not in ("-v", "--verbose")]
    return bool(words) and words[0] == "bench"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Ctrl-C anywhere, imports included, is one line and exit code 130.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("\ncached-tts: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    from cached_tts._cli import run_command as _run_command

    words = sys.argv[1:] if argv is None else argv
    if _run_command.is_run(words):
        # Parsed on its own: `run` imports none of the other commands.
        return _run_command.execute(words)
    if _asks_for_bench(words):
        # Before argparse: one line, whatever options follow, not "invalid choice".
        print(_BENCH_MOVED, file=sys.stderr)
        return 2
    import logging  # here: `run` (above) starts faster without it

    args = _parser().parse_args(words)
    _configure_logging(verbose=args.verbose)
    try:
        return _run(args)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # users get one line; -v logs the traceback
        from cached_tts._cli.errors import one_line

        logging.getLogger("cached_tts").debug("Failure", exc_info=True)
        print(f"cached-tts: error: {one_line(exc, verbose=args.verbose)}", file=sys.stderr)
        return 1


def _configure_logging(*, verbose: bool) -> None:
    import logging
    import warnings

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=_LOG_FORMAT)
    # The progress display says what is happening; the log adds warnings, and
    # with -v everything.
    logging.getLogger("cached_tts").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:
        # Chatterbox's dependencies warn about their own deprecations on every
        # run, and transformers about its attention implementation.
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category)
        # transformers and diffusers set their loggers' level when first
        # imported, from these variables.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from cached_tts._cli.demo import run_demo
        from cached_tts._cli.fleet import warn_if_unreachable
        from cached_tts._cli.options import remote_of

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
    return code
