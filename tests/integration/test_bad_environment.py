"""A real program under enable() with a bad $CACHED_TTS_REMOTE: it warns once and runs on.

The program runs in a new process forked from the warm server (warm.py), which
hands it the random-weight ``components``; cached_tts reads the variable when
the program asks for its cache, not when it is imported.
"""

from __future__ import annotations

import json
import os
import textwrap

import pytest

pytestmark = pytest.mark.slow

# A program that enables caching and prepares one voice three times, counting
# the step every preparation runs; a second model's cache is the same default.
PROGRAM = """
import json
import sys
from unittest import mock

from chatterbox.tts import ChatterboxTTS

import cached_tts
from cached_tts.testing import random_model

cached_tts.enable()
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


def test_a_typo_in_the_remote_variable_warns_once_and_every_call_works(warm, clips, tmp_path):
    env = {**os.environ, "CACHED_TTS_CACHE_DIR": str(tmp_path / "cache")}
    env["CACHED_TTS_REMOTE"] = "redis//typo"
    env.pop("CACHED_TTS_DISABLE", None)

    result = warm.run(textwrap.dedent(PROGRAM), clips["alice"], env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"preparations": 1, "hits": 3, "disk": 1}
    warnings = [line for line in result.stderr.splitlines() if "CACHED_TTS_REMOTE" in line]
    assert len(warnings) == 1, result.stderr
    assert "'redis//typo'" in warnings[0]
    assert "memory and disk still work" in warnings[0]
