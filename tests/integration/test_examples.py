"""The examples run offline with --random-weights and do what they say.

Each runs in this process (``runpy``) on the session's already built random
architecture. Preparing voices, the cache, the model lock and ``generate``
itself are real; only the two decoders inside ``generate`` (T3's sampling and
S3Gen's synthesis, 10 to 30 s a call on this CPU) return short fixed outputs.
``tests/integration/test_cli_models.py`` runs one full ``generate`` through ``say``.
"""

from __future__ import annotations

import json
import runpy
import sys
import threading
from pathlib import Path

import pytest
import soundfile
import torch

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(autouse=True)
def built_once(components, monkeypatch, tmp_path):
    monkeypatch.setattr("cached_tts.testing.random_components", lambda *_a, **_k: components)
    monkeypatch.chdir(tmp_path)
    # Examples that use the default cache must not touch the user's folder.
    monkeypatch.setenv("CACHED_TTS_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.setattr("cached_tts._cache.cache._default", None)


@pytest.fixture(autouse=True)
def quick_decoders(components, monkeypatch):
    tokens = torch.full((1, 10), 100, dtype=torch.long)
    monkeypatch.setattr(components.t3, "inference", lambda **_: tokens)
    monkeypatch.setattr(components.s3gen, "inference", lambda **_: (torch.zeros(1, 4800), None))


def run_example(name, monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "argv", [name, *map(str, argv)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_simple_prepares_the_voice_once_for_every_text(clips, tmp_path, monkeypatch, capsys):
    out = run_example(
        "simple.py",
        monkeypatch,
        capsys,
        *("--voice", clips["alice"], "--texts", 2, "--out", tmp_path / "out", "--random-weights"),
    )
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["1.wav", "2.wav"]
    assert "misses: 1, hit rate: 50%" in out  # print(stats) is the stats table
    assert "CacheStats(" not in out


def test_compare_prints_per_call_times_and_the_measured_speedup(
    clips, tmp_path, monkeypatch, capsys
):
    out = run_example(
        "compare.py",
        monkeypatch,
        capsys,
        *("--voice", clips["alice"], "--texts", 2, "--cache-dir", tmp_path / "cache"),
        "--random-weights",
    )
    lines = out[out.index("call") :].splitlines()
    assert lines[0].split() == ["call", "plain", "(s)", "cached", "(s)"]
    assert [line.split()[0] for line in lines[1:4]] == ["1", "2", "all"]
    assert "Speedup on this run:" in out
    assert "1 hits, 1 misses" in out


def test_audiobook_renders_each_line_in_its_voice_with_pauses_and_timings(
    clips, tmp_path, monkeypatch, capsys
):
    script = tmp_path / "script.txt"
    script.write_text("# chapter one\nALICE: Hello, Bob.\n\nBOB: Hi.\nALICE: Not rendered.\n")
    voices = tmp_path / "voices.json"
    voices.write_text(json.dumps({"ALICE": clips["alice"], "BOB": clips["bob"]}))
    book = tmp_path / "book" / "book.wav"

    out = run_example(
        "audiobook.py",
        monkeypatch,
        capsys,
        *(script, "--voices", voices, "--out", book, "--texts", 2, "--pause", 0.5),
        *("--cache-dir", tmp_path / "cache", "--random-weights"),
    )

    timings = json.loads(book.with_suffix(".json").read_text())
    first, second = timings["segments"]
    assert (first["speaker"], second["speaker"]) == ("ALICE", "BOB")
    assert second["start"] == pytest.approx(first["end"] + 0.5, abs=0.002)
    audio, rate = soundfile.read(book)
    assert len(audio) / rate == pytest.approx(second["end"], abs=0.002)
    assert "2 lines" in out


def test_audiobook_names_a_speaker_without_a_voice(clips, tmp_path, monkeypatch, capsys):
    script = tmp_path / "script.txt"
    script.write_text("ALICE: Hello.\nCAROL: Who am I?\n")
    voices = tmp_path / "voices.json"
    voices.write_text(json.dumps({"ALICE": clips["alice"]}))
    with pytest.raises(SystemExit) as exit_:
        run_example("audiobook.py", monkeypatch, capsys, script, "--voices", voices)
    assert "no voice for CAROL" in str(exit_.value.code)


def test_server_warms_its_voices_and_serves_concurrent_requests(clips, tmp_path):
    from fastapi.testclient import TestClient

    from cached_tts import CachedChatterboxTTS, ConditionalCache
    from cached_tts.testing import random_model

    server = runpy.run_path(str(EXAMPLES / "server.py"))
    voices = Path(clips["alice"]).parent
    model = random_model(CachedChatterboxTTS, cache=ConditionalCache(tmp_path / "cache"))
    responses = {}

    with TestClient(server["create_app"](model, voices)) as client:
        client.app.state.warming.result(timeout=120)

        def ask(voice):
            responses[voice] = client.post("/tts", json={"text": "Hi.", "voice": voice})

        threads = [threading.Thread(target=ask, args=(v,)) for v in ("alice", "bob")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        missing = client.post("/tts", json={"text": "Hi.", "voice": "nobody"})
        stats = client.get("/stats").json()

    for voice in ("alice", "bob"):
        assert responses[voice].status_code == 200
        assert responses[voice].headers["content-type"] == "audio/wav"
        assert responses[voice].content[:4] == b"RIFF"
    assert missing.status_code == 404
    assert sorted(stats["warm_up"]["new"]) == sorted(clips.values())
    assert stats["misses"] == 2  # only the warm-up prepared
    assert stats["hits"] == 2  # both requests were served from the cache


def test_notebook_recomputes_an_edited_clip_and_not_a_new_exaggeration(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    notebook = json.loads((EXAMPLES / "notebook.ipynb").read_text())
    assert notebook["nbformat"] == 4
    shell = InteractiveShell.instance()  # runs cells as Jupyter does: magics, rich reprs
    try:
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                result = shell.run_cell("".join(cell["source"]), store_history=False)
                assert result.success, result.error_in_exec or result.error_before_exec
        namespace = shell.user_ns
        out = capsys.readouterr().out
    finally:
        shell.run_line_magic("unload_ext", "cached_tts")
        InteractiveShell.clear_instance()

    assert namespace["first"] is True
    assert namespace["again"] is False
    assert namespace["more_emotion"] is False
    assert namespace["after_edit"] is True
    assert "seconds saved" in out  # the stats table, not a dataclass repr
    assert "CacheStats(" not in out
    assert "HASH" in out  # %tts_cache ls, on the model's own cache
    assert out.count("/voice.wav") >= 2  # both versions of the edited clip
