"""`cached-tts bench`: the side-by-side benchmark, as a subcommand."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

CASES = {
    "first_call_plain",
    "plain_prepare",
    "miss",
    "memory_hit",
    "disk_hit_hash_remembered",
    "disk_hit_hash_computed",
    "upstream_conditionals_load",
    "first_hit_new_wrapper",
}


def test_bench_measures_every_case_and_prints_json(tmp_path):
    out = tmp_path / "figures.json"
    command = ["bench", "--json", "--repeat-miss", "1", "--out", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "cached_tts", *command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert json.loads(out.read_text())["results"].keys() == figures["results"].keys()
    assert figures["results"].keys() >= CASES
    for case in CASES:
        timing = figures["results"][case]
        assert timing["n"] >= 1
        assert 0 < timing["min_s"] <= timing["median_s"]
    # A hit never prepares: it is far below a miss whatever the machine's load.
    assert figures["results"]["memory_hit"]["median_s"] < figures["results"]["miss"]["median_s"]
    assert figures["sizes_bytes"]["entry_file_bytes"] > 100_000  # a 10 s clip's entry


def test_bench_refuses_a_repeat_count_below_one():
    result = subprocess.run(
        [sys.executable, "-m", "cached_tts", "bench", "--repeat-miss", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert "--repeat-miss must be at least 1" in result.stderr
