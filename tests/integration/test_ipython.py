"""`%load_ext cached_tts` in a real IPython shell, and the %tts_cache magic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cached_tts
from cached_tts import EntryKey

pytestmark = pytest.mark.slow

ROOT = Path(cached_tts.__file__).resolve().parent.parent

SESSION = """\
import sys, types
# What a Jupyter kernel has loaded: tqdm.auto then looks for ipywidgets (absent
# here) and warns, unless the extension keeps it quiet.
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
%load_ext cached_tts
import torch
from chatterbox.tts import ChatterboxTTS
from cached_tts import EntryKey, default_cache
from cached_tts._entries.entry import Entry
from cached_tts._wrapping.patching import is_enabled
print("enabled:", is_enabled(), "cache" in ChatterboxTTS.__dict__)
key = EntryKey(content="c" * 64, weights="w" * 64, settings=())
voice = Entry(
    {
        "ref.prompt_token": torch.zeros(1, 2, dtype=torch.int64),
        "ref.prompt_token_len": torch.tensor([2]),
        "ref.prompt_feat": torch.zeros(1, 4, 80),
        "ref.embedding": torch.ones(1, 192),
    },
    absent=("ref.prompt_feat_len",),
)
for _ in range(2):
    default_cache().get_or_prepare(key, lambda: voice, source="/voices/alice.wav")
print("=== stats")
%tts_cache
print("=== ls")
%tts_cache ls
print("=== clear")
%tts_cache clear
print("=== ls after clear")
%tts_cache ls
print("=== typo")
from IPython.core.error import UsageError
try:
    get_ipython().run_line_magic("tts_cache", "lss")
except UsageError as error:
    print(error)
%unload_ext cached_tts
print("=== unloaded:", is_enabled(), "cache" in ChatterboxTTS.__dict__)
"""


@pytest.fixture(scope="module")
def transcript(tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("ipython") / "cache"
    env = {**os.environ, "CACHED_TTS_CACHE_DIR": str(cache_dir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("CACHED_TTS_DISABLE", None)
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--colors=nocolor", "-c", SESSION],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    sections = {}
    for block in ("\n" + result.stdout).split("\n=== ")[1:]:
        title, _, body = block.partition("\n")
        sections[title] = body.strip()
    return result, sections, cache_dir


def test_loading_the_extension_enables_caching_of_chatterbox_classes(transcript):
    result, _, _ = transcript
    assert "enabled: True True" in result.stdout, result.stderr


def test_tts_cache_shows_the_stats_of_the_session_cache(transcript):
    _, sections, cache_dir = transcript
    shown = sections["stats"]
    assert str(cache_dir) in shown
    assert shown.splitlines()[2].split() == ["entries", "1", "1"]
    assert shown.splitlines()[4].split() == ["hits", "1", "0"]
    assert "misses: 1" in shown


def test_loading_the_extension_shows_no_tqdm_warning(transcript):
    result, _, _ = transcript
    assert "TqdmWarning" not in result.stderr
    assert "IProgress" not in result.stderr


def test_tts_cache_ls_is_the_table_cached_tts_ls_prints(transcript):
    _, sections, _ = transcript
    header, line = sections["ls"].splitlines()
    key = EntryKey(content="c" * 64, weights="w" * 64, settings=())
    assert header.split()[:3] == ["HASH", "MODEL", "SIZE"]
    assert line.split()[0] == key.digest[:12]  # the entry's name, as `cached-tts ls` shows it
    assert line.endswith("/voices/alice.wav")


def test_tts_cache_clear_empties_the_disk_tier(transcript):
    _, sections, cache_dir = transcript
    assert sections["clear"].startswith("Cleared")
    assert sections["ls after clear"] == f"No entries in {cache_dir}."
    assert list((cache_dir / "entries").glob("*.safetensors")) == []


def test_an_unknown_tts_cache_command_shows_the_usage(transcript):
    _, sections, _ = transcript
    assert sections["typo"] == "usage: %tts_cache [ls | clear]"


def test_unloading_the_extension_restores_chatterbox(transcript):
    result, _, _ = transcript
    assert "=== unloaded: False False" in result.stdout
