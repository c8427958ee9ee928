"""`cached-tts bench`: the side-by-side benchmark, as a subcommand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

HIT_PARTS = Path(__file__).parents[2] / "benchmarks" / "hit_parts.py"

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


def test_bench_times_hits_of_a_checkpoint_loaded_model(tmp_path, monkeypatch):
    from cached_tts import _bench
    from cached_tts.testing import write_voice_clip

    for name in ("MEMORY_HIT_REPEATS", "DISK_HIT_REPEATS"):
        monkeypatch.setattr(_bench, name, 3)
    clip = write_voice_clip(tmp_path / "voice.wav", seconds=_bench.CLIP_SECONDS, seed=_bench.SEED)
    bench = _bench.Bench(torch.device("cpu"), tmp_path, clip, None, None, None, None)

    _bench.bench_checkpoint_loaded(bench)

    for case in (
        "memory_hit_checkpoint_loaded",
        "disk_hit_hash_remembered_checkpoint_loaded",
        "disk_hit_hash_computed_checkpoint_loaded",
    ):
        assert len(bench.results[case].seconds) == 3
    assert not (tmp_path / "checkpoint-english").exists()


def test_the_hit_breakdown_times_every_part_of_a_memory_hit(tmp_path):
    out = tmp_path / "hit_parts.json"
    result = subprocess.run(
        [sys.executable, str(HIT_PARTS), "--repeat", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    timings = json.loads(out.read_text())["us"]
    assert len(timings) == 7
    assert all(value > 0 for value in timings.values())
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(timings) + 1  # the header, each part, what the parts leave
