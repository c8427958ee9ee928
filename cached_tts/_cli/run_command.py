"""``cached-tts run [--cache-dir D] [--remote URL] COMMAND...``: the parser and its checks.

Built apart from the other commands so that ``cached-tts run`` imports none of
them: the command starts as fast as Python allows, then replaces itself with
the user's (:func:`cached_tts._cli.runner.run_command`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "execute", "is_run", "split_module"]

_DESCRIPTION = """\
Run any command (a script, `python ...`, `-m module`, a console script, uvicorn or
gunicorn with workers) with chatterbox's voice preparations cached in every Python
process it starts. The command replaces this one: it keeps its exit code, signals,
stdin and stdout. CACHED_TTS_DISABLE=1 turns caching off in a process that has it."""

_EPILOG = """examples:
  cached-tts run script.py --its-args
  cached-tts run python script.py --its-args
  cached-tts run -m package.module --its-args
  cached-tts run --cache-dir /srv/voices uvicorn app:app --workers 2
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` to the command line's subcommands."""
    run = commands.add_parser(
        "run",
        help="run any command with chatterbox's voice preparations cached",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(run)


def add_arguments(run: argparse.ArgumentParser) -> None:
    """``run``'s own options, then the command and its arguments, left as given."""
    run.add_argument(
        "--cache-dir",
        type=Path,
        help="cache folder for every process of the tree (sets $CACHED_TTS_CACHE_DIR)",
    )
    run.add_argument(
        "--remote",
        metavar="URL[,URL...]",
        help="shared tiers for every process of the tree: Redis or object-store URLs, separated "
        "by commas (sets $CACHED_TTS_REMOTE; '' turns an inherited one off)",
    )
    run.add_argument(
        "-m",
        dest="module",
        metavar="MODULE",
        help="run a module, as `python -m MODULE` does; every word after MODULE is the module's",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command and its own arguments")


def is_run(argv: list[str]) -> bool:
    """Whether the command line asks for ``run`` (after any ``-v``).

    >>> is_run(["-v", "run", "script.py"]), is_run(["ls"])
    (True, False)
    """
    words = [word for word in argv if word not in ("-v", "--verbose")]
    return bool(words) and words[0] == "run"


def split_module(words: list[str]) -> tuple[list[str], str | None, list[str]]:
    """``run``'s own words, the ``-m`` module (``None`` without one) and the module's argv.

    Every word after ``-m MODULE`` is the module's, as with ``python -m``: argparse
    alone would take the module's ``-v``, ``--cache-dir`` or ``--help`` as run's.

    >>> split_module(["--cache-dir", "/c", "-m", "pkg", "-v", "--help"])
    (['--cache-dir', '/c'], 'pkg', ['-v', '--help'])
    >>> split_module(["-vmpkg", "x"]), split_module(["script.py", "-m", "pkg"])
    ((['-v'], 'pkg', ['x']), (['script.py', '-m', 'pkg'], None, []))
    """
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("--cache-dir", "--remote"):
            index += 2  # and the option's value
            continue
        if word == "--" or not word.startswith("-"):
            break  # the command starts here: its words are its own
        flags = word[1:].lstrip("v")  # -v, -vm, -vvmpkg: short flags may be joined
        if not word.startswith("--") and flags.startswith("m"):
            verbose = ["-v"] if len(flags) < len(word) - 1 else []
            if len(flags) > 1:  # -mpkg
                return words[:index] + verbose, flags[1:], words[index + 1 :]
            if index + 1 < len(words):
                return words[:index] + verbose, words[index + 1], words[index + 2 :]
            break  # a bare -m: argparse says it needs a module
        index += 1
    return words, None, []


def execute(argv: list[str]) -> int:
    """Parse ``argv`` (the whole command line, see :func:`is_run`) and execute the command."""
    position = argv.index("run")
    run = argparse.ArgumentParser(
        prog="cached-tts run",
        allow_abbrev=False,  # split_module knows run's options by their full names
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("-v", "--verbose", action="store_true", help="say what is executed")
    add_arguments(run)
    own, module, module_argv = split_module(argv[position + 1 :])
    args = run.parse_args(own)
    if module is not None:
        args.module, args.command = module, module_argv
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.module is None and not command:
        run.error("give the command to run, e.g. `cached-tts run script.py`")
    if args.remote:
        _check_remote(run, args.remote)
    if args.verbose or position > 0:
        print(f"cached-tts run: executing {command}", file=sys.stderr)
    from cached_tts._cli.runner import run_command

    return run_command(command, module=args.module, cache_dir=args.cache_dir, remote=args.remote)


def _check_remote(parser: argparse.ArgumentParser, remote: str) -> None:
    """A usage error for a URL that names no kind of shared tier, before the command starts."""
    from cached_tts._tiers.objectstore.opening import is_object_store_url
    from cached_tts._tiers.redis.settings import is_redis_url, redacted
    from cached_tts._tiers.shared import split_urls

    for url in split_urls(remote):
        if not (is_redis_url(url) or is_object_store_url(url)):
            parser.error(
                f"--remote {redacted(url)!r} is neither a Redis URL (redis://, rediss://, "
                "unix://) nor an object store's (s3://, gs://, az://, abfs://, file://, memory://)"
            )
