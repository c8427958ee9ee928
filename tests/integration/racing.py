"""Start worker processes together and collect what each reports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

WORKER = Path(__file__).with_name("race_worker.py")


def race(tmp_path: Path, argvs: list[list[str]], *, timeout: float = 300) -> list[dict]:
    """Run ``race_worker.py`` once per argv, release them at once, return their reports.

    Each worker builds its model, says it is ready, and waits for the go file,
    so that all of them ask for the voice at the same moment.
    """
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *argv[:2], str(go), *argv[2:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    deadline = time.monotonic() + timeout
    while len(list(tmp_path.glob("go.ready-*"))) < len(workers):
        assert time.monotonic() < deadline, "workers did not get ready in time"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.05)
    go.touch()
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports
