"""Run a function in a forked child and wait for it, with a limit instead of a hang."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback


def in_forked_child(function, *, timeout: float = 120.0) -> str:
    """Fork; the child runs ``function()``. Returns "ok", "failed" or "hung"."""
    return wait_for_child(start_child(function), timeout=timeout)


def start_child(function) -> int:
    """Fork a child that runs ``function()``; its process id.

    The child leaves with ``os._exit``, so nothing of the test process (pytest,
    fixtures, atexit handlers) runs twice; a failure's traceback goes to stderr.
    """
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            function()
            code = 0
        except BaseException:  # noqa: BLE001 -- reported through the exit status
            traceback.print_exc(file=sys.stderr)
        finally:
            os._exit(code)
    return pid


def wait_for_child(pid: int, *, timeout: float = 120.0) -> str:
    """ "ok" or "failed" by the child's exit status; "hung" (and killed) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "ok" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"
