"""Several processes sharing one cache folder."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from race_worker import conditionals_digest

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("race_worker.py")


def test_three_processes_racing_on_one_folder_prepare_once_and_agree(tmp_path, clips, reference):
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path / "cache"), clips["alice"], str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    # Start them together, once all three have built their models.
    deadline = time.monotonic() + 300
    while len(list(tmp_path.glob("go.ready-*"))) < 3:
        assert time.monotonic() < deadline, "workers did not get ready in time"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.05)
    go.touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert sum(r["misses"] for r in results) == 1
    assert sum(r["disk_hits"] for r in results) == 2
    expected = conditionals_digest(reference(clips["alice"], 0.5))
    assert [r["digest"] for r in results] == [expected] * 3
