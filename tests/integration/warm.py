"""New processes that start with chatterbox imported: forks of one warm process.

A test that needs another process (several machines racing on one tier, a
second process reading what the first one stored) pays about 9 s of CPU before
the new process does anything: importing chatterbox and building the
random-weight modules (measured on the project's 2-core machine). A
:class:`WarmProcesses` pays it once per test worker: it starts this file as a
server, which imports chatterbox and cached_tts and builds the English modules
(:func:`cached_tts.testing.random_components`, seed 0); each :meth:`~WarmProcesses.start`
forks the server. The child is a new process (its own pid, memory, file
descriptors and file locks) that runs the given code as ``__main__`` with
``components`` already built, the environment and working folder it is given,
and its stdout and stderr in files.

What a fork cannot give is a fresh interpreter: what chatterbox, huggingface_hub
or cached_tts read from the environment when they are imported was read in the
server. Tests whose subject is a fresh interpreter (``cached-tts run``, what
importing cached_tts imports, start-up) start ``sys.executable`` instead.

Forking after torch has run a parallel region hangs the child (libgomp), so
the server runs single-threaded and each child takes the thread count the test
worker runs with (``OMP_NUM_THREADS``, see tests/conftest.py): the bits a
preparation computes depend on it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

#: How long a child may run before the test gives up on it and kills it.
TIMEOUT = 300.0


class WarmProcesses:
    """A warm server to fork new processes from; :meth:`close` stops it."""

    def __init__(self) -> None:
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- read on failure, closed in close()
        self._server = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._ask(None)  # the server's first line says it is ready

    def start(
        self, code: str, *argv: str, env: dict[str, str] | None = None, cwd: str | Path = "."
    ) -> WarmChild:
        """Fork a child that runs ``code`` with ``sys.argv[1:] == argv``, and return at once."""
        folder = Path(tempfile.mkdtemp(prefix="warm-"))
        request = {
            "code": code,
            "argv": list(argv),
            "env": dict(os.environ if env is None else env),
            "cwd": str(Path(cwd).resolve()),
            "out": str(folder / "stdout"),
            "err": str(folder / "stderr"),
        }
        return WarmChild(self, self._ask({"start": request})["pid"], folder)

    def run(
        self, code: str, *argv: str, env: dict[str, str] | None = None, cwd: str | Path = "."
    ) -> subprocess.CompletedProcess[str]:
        """Run ``code`` in a forked child and wait for it, as ``subprocess.run`` would."""
        return self.start(code, *argv, env=env, cwd=cwd).wait()

    def close(self) -> None:
        if self._server.stdin:
            self._server.stdin.close()
        self._server.wait(timeout=60)
        self._log.close()

    def _ask(self, request: dict[str, Any] | None) -> dict[str, Any]:
        assert self._server.stdin
        assert self._server.stdout
        if request is not None:
            self._server.stdin.write(json.dumps(request) + "\n")
            self._server.stdin.flush()
        line = self._server.stdout.readline()
        if not line:
            self._log.seek(0)
            raise RuntimeError(f"the warm server exited:\n{self._log.read()[-3000:]}")
        return json.loads(line)


class WarmChild:
    """One forked child: :meth:`wait` for what it printed and how it exited."""

    def __init__(self, server: WarmProcesses, pid: int, folder: Path) -> None:
        self._server, self.pid, self._folder = server, pid, folder
        self._code: int | None = None

    def poll(self) -> int | None:
        """Its exit code, or None while it runs."""
        if self._code is None:
            self._code = self._server._ask({"poll": self.pid})["returncode"]
        return self._code

    def wait(self, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Wait for it to exit (killed after ``timeout`` s): its exit code, stdout and stderr."""
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                self._server._ask({"reap": self.pid})
                raise subprocess.TimeoutExpired(["warm child", str(self.pid)], timeout)
            time.sleep(0.05)
        out, err = ((self._folder / name).read_text() for name in ("stdout", "stderr"))
        shutil.rmtree(self._folder)
        return subprocess.CompletedProcess(["warm child", str(self.pid)], code, out, err)


# -- the server: this file run as a script --------------------------------------------


def _serve() -> None:
    import torch

    threads = torch.get_num_threads()  # what $OMP_NUM_THREADS asks for
    torch.set_num_threads(1)
    import chatterbox.tts  # noqa: F401 -- imported once, for every child

    from cached_tts.testing import random_components

    components = random_components("english", seed=0)
    _reply({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        if "start" in request:
            _reply({"pid": _fork(request["start"], components, threads)})
        elif "poll" in request:
            done, status = os.waitpid(request["poll"], os.WNOHANG)
            _reply({"returncode": os.waitstatus_to_exitcode(status) if done else None})
        else:
            os.waitpid(request["reap"], 0)
            _reply({})


def _reply(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def _fork(request: dict[str, Any], components: Any, threads: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _redirect(0, os.devnull, os.O_RDONLY)
        _redirect(1, request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        _redirect(2, request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["-c", *request["argv"]]
        import torch

        torch.set_num_threads(threads)
        namespace = {"__name__": "__main__", "components": components}
        exec(compile(request["code"], "<warm child>", "exec"), namespace)  # noqa: S102 -- the test's own code
        code = 0
    except SystemExit as leaving:  # as python leaves: sys.exit(n), sys.exit(), sys.exit("why")
        if isinstance(leaving.code, int) or leaving.code is None:
            code = leaving.code or 0
        else:
            sys.stderr.write(f"{leaving.code}\n")
    except BaseException:  # noqa: BLE001 -- reported as python would: traceback, exit 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _redirect(fd: int, path: str, flags: int) -> None:
    opened = os.open(path, flags, 0o644)
    os.dup2(opened, fd)
    os.close(opened)


if __name__ == "__main__":
    _serve()
