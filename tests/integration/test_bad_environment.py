"""A real program under enable() with a bad $CACHED_TTS_REMOTE: it warns once and runs on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cached_tts

pytestmark = pytest.mark.slow

ROOT = Path(cached_tts.__file__).resolve().parent.parent

# A program that enables caching and prepares one voice three times, counting
# the step every preparation runs; a second model's cache is the same default.
PROGRAM = """
import json
import sys
from unittest import mock

from chatterbox.tts import ChatterboxTTS

import cached_tts
from cached_tts.testing import random_components, random_model

cached_tts.enable()
components = random_components()
models = [random_model(ChatterboxTTS, components=components) for _ in range(2)]
s3gen = components.s3gen
with mock.patch.object(s3gen, "embed_ref", wraps=s3gen.embed_ref) as embed_ref:
    for model in models:
        for _ in range(2):
            model.prepare_conditionals(sys.argv[1], exaggeration=0.5)
stats = cached_tts.default_cache().stats()
report = {"preparations": embed_ref.call_count, "hits": stats.hits, "disk": stats.disk_entries}
print(json.dumps(report))
"""


def run_program(script, clip, cache_dir, remote):
    env = {**os.environ, "CACHED_TTS_CACHE_DIR": str(cache_dir), "CACHED_TTS_REMOTE": remote}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("CACHED_TTS_DISABLE", None)
    return subprocess.run(
        [sys.executable, str(script), clip],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_typo_in_the_remote_variable_warns_once_and_every_call_works(clips, tmp_path):
    script = tmp_path / "speak.py"
    script.write_text(textwrap.dedent(PROGRAM))

    result = run_program(script, clips["alice"], tmp_path / "cache", "redis//typo")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"preparations": 1, "hits": 3, "disk": 1}
    warnings = [line for line in result.stderr.splitlines() if "CACHED_TTS_REMOTE" in line]
    assert len(warnings) == 1, result.stderr
    assert "'redis//typo'" in warnings[0]
    assert "memory and disk still work" in warnings[0]
