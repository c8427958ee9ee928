"""``cached-tts run COMMAND``: any command, with caching in every Python process it starts.

As ``opentelemetry-instrument`` and ``ddtrace-run`` do, it puts a folder that
holds a ``sitecustomize`` module (:mod:`cached_tts._bootstrap`) first on
``$PYTHONPATH`` and replaces itself with the command (``exec``): the command
keeps its process, exit code, signals, stdin and stdout, and every Python
process of the tree (``subprocess`` children, spawn and forkserver workers,
uvicorn's and gunicorn's workers) imports that module at start-up. Programs
that are not Python run untouched. ``--cache-dir`` and ``--remote`` reach the
whole tree through ``$CACHED_TTS_CACHE_DIR`` and ``$CACHED_TTS_REMOTE``.

>>> command_line(["script.py", "--fast"], module=None)[1:]
['script.py', '--fast']
>>> command_line(["uvicorn", "app:app"], module=None)
['uvicorn', 'app:app']
>>> environment({"PYTHONPATH": "/src"}, cache_dir=None, remote=None)["PYTHONPATH"] == (
...     BOOTSTRAP_FOLDER + os.pathsep + "/src"
... )
True
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["BOOTSTRAP_FOLDER", "command_line", "environment", "run_command"]

#: The folder whose ``sitecustomize`` enables caching; ``$PYTHONPATH`` starts with it.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTSTRAP_FOLDER = os.path.join(_PACKAGE, "_bootstrap")

# Given here rather than imported: `run` stays as fast to start as it can
# (the names are checked against cached_tts._cache.cache and _remote by the tests).
CACHE_DIR_ENV = "CACHED_TTS_CACHE_DIR"
REMOTE_ENV = "CACHED_TTS_REMOTE"

# What a shell exits with for a command it cannot find or cannot execute.
_NOT_FOUND = 127
_NOT_EXECUTABLE = 126


def command_line(command: list[str], *, module: str | None) -> list[str]:
    """The argv to execute: ``-m module`` and ``script.py`` run on this Python.

    Anything else (``python``, a console script, a server, a shell script) is
    looked up on ``$PATH`` as a shell would.
    """
    if module is not None:
        return [sys.executable, "-m", module, *command]
    if command and command[0].endswith((".py", ".pyw")):
        return [sys.executable, *command]
    return list(command)


def environment(
    base: Mapping[str, str], *, cache_dir: Path | None, remote: str | None
) -> dict[str, str]:
    """``base`` with the bootstrap folder first on ``$PYTHONPATH``, and the cache settings.

    The ``$PYTHONPATH`` that ``base`` holds is kept, after the folder.
    """
    env = dict(base)
    existing = env.get("PYTHONPATH", "")
    first = existing.split(os.pathsep)[0]
    # Real paths: a container may spell the folder through a symlink.
    if not first or os.path.realpath(first) != os.path.realpath(BOOTSTRAP_FOLDER):
        env["PYTHONPATH"] = BOOTSTRAP_FOLDER + (os.pathsep + existing if existing else "")
    if cache_dir is not None:
        # Absolute: a process of the tree may change its working folder.
        env[CACHE_DIR_ENV] = os.path.abspath(cache_dir)
    if remote is not None:
        env[REMOTE_ENV] = remote  # "" turns the inherited shared tiers off
    return env


def run_command(
    command: list[str],
    *,
    module: str | None = None,
    cache_dir: Path | None = None,
    remote: str | None = None,
) -> int:
    """Execute ``command`` with caching in its whole process tree.

    On POSIX it does not return when the command starts: the command takes
    this process over. It returns the exit code otherwise (127 for a command
    that cannot be found, 126 for one that cannot be executed).
    """
    argv = command_line(command, module=module)
    env = environment(os.environ, cache_dir=cache_dir, remote=remote)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if os.name != "posix":  # no exec that keeps the process: wait for the child
            import subprocess

            return subprocess.call(argv, env=env)  # noqa: S603 -- the user's own command
        os.execvpe(argv[0], argv, env)  # noqa: S606 -- the user's own command
    except FileNotFoundError:
        _fail(f"command not found: {argv[0]}")
        return _NOT_FOUND
    except PermissionError:
        _fail(f"permission denied: {argv[0]} (is it executable?)")
        return _NOT_EXECUTABLE
    except OSError as exc:
        _fail(f"cannot execute {argv[0]}: {exc.strerror or exc}")
        return _NOT_EXECUTABLE
    return 0  # pragma: no cover - execvpe returns only by raising


def _fail(message: str) -> None:
    print(f"cached-tts run: {message}", file=sys.stderr)
