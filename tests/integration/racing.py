"""Start worker processes together and collect what each reports."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warm import WarmProcesses

RACE_WORKER = "import sys, race_worker\nrace_worker.main(components, sys.argv[1:])\n"


def race(
    warm: WarmProcesses, tmp_path: Path, argvs: list[list[str]], *, timeout: float = 300
) -> list[dict]:
    """Run ``race_worker.main`` in a new process per argv, release them at once, return reports.

    Each worker builds its model, says it is ready, and waits for the go file,
    so that all of them ask for the voice at the same moment.
    """
    go = tmp_path / "go"
    workers = [warm.start(RACE_WORKER, *argv[:2], str(go), *argv[2:]) for argv in argvs]
    deadline = time.monotonic() + timeout
    while len(list(tmp_path.glob("go.ready-*"))) < len(workers):
        assert time.monotonic() < deadline, "workers did not get ready in time"
        failed = [w.wait().stderr for w in workers if w.poll() is not None]
        assert not failed, failed
        time.sleep(0.05)
    go.touch()
    reports = []
    for worker in workers:
        done = worker.wait(timeout)
        assert done.returncode == 0, done.stderr
        reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return reports
