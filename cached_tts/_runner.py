"""``python -m cached_tts run script.py``: an unmodified script, with caching on.

The script runs as ``python script.py`` would run it: the same ``sys.argv``,
``__name__ == "__main__"``, its folder first on ``sys.path``, and the same exit
code (``sys.exit`` codes pass through; an uncaught exception prints its
traceback and exits 1).
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
import traceback
from pathlib import Path
from types import TracebackType

from cached_tts._cache import CACHE_DIR_ENV
from cached_tts._remote import REMOTE_ENV

__all__ = ["run_script"]

logger = logging.getLogger("cached_tts")

# What `python missing.py` exits with.
_CANNOT_OPEN = 2


def run_script(
    script: str, args: list[str], *, cache_dir: Path | None = None, remote: str | None = None
) -> int:
    """Run ``script`` with ``args`` and chatterbox's classes cached; its exit code.

    ``cache_dir`` and ``remote`` set ``$CACHED_TTS_CACHE_DIR`` and
    ``$CACHED_TTS_REMOTE`` for the script and the processes it starts.
    ``SystemExit`` propagates, as it would from the script.
    """
    path = os.path.abspath(script)
    if not os.path.isfile(path):
        print(f"cached-tts run: can't open file {script!r}: no such file", file=sys.stderr)  # noqa: T201 -- the command's own error
        return _CANNOT_OPEN
    if cache_dir is not None:
        os.environ[CACHE_DIR_ENV] = str(cache_dir)
    if remote is not None:
        os.environ[REMOTE_ENV] = remote
    from cached_tts._patching import enable

    enable()
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(path)
    try:
        # As given, not absolute: runpy puts it in sys.argv[0], as python does.
        runpy.run_path(script, run_name="__main__")
    except Exception as exc:  # noqa: BLE001 -- reported exactly as the interpreter would
        _print_script_traceback(exc, script)
        return 1
    return 0


def _print_script_traceback(exc: BaseException, path: str) -> None:
    """The traceback from the script's first frame on, without runpy's and ours."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != path:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
