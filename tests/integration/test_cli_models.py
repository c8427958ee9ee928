"""warm and say, and cached_tts.warm, on the real architecture with random weights.

Each command builds its model through ``load_model(random_weights=True)``;
these tests hand it the session's already built modules (building S3Gen takes
seconds), which changes nothing else about the command.
"""

from __future__ import annotations

import errno
import threading

import pytest
import redis
import soundfile

import cached_tts
from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts._cli import main
from cached_tts._cli import voice_commands as _voice_commands
from cached_tts._cli.profiles import ModelProfile, identity
from cached_tts._exceptions import ContentChangedError
from cached_tts._keys import key as _keys
from cached_tts._keys import versions as _versions
from cached_tts._keys.hashing import FileHasher
from cached_tts._tiers.disk.store import DiskStore
from cached_tts._wrapping.cache_choice import cache_in_use
from cached_tts._wrapping.wrappers import model_lock
from cached_tts.testing import random_model, write_voice_clip

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def built_once(components, monkeypatch):
    monkeypatch.setattr("cached_tts.testing.random_components", lambda *_a, **_k: components)


@pytest.fixture
def voices(tmp_path):
    folder = tmp_path / "voices"
    (folder / "nested").mkdir(parents=True)
    write_voice_clip(folder / "carol.wav", seconds=2.5, seed=3)
    write_voice_clip(folder / "nested" / "dave.flac", seconds=2.5, seed=4)
    (folder / "notes.txt").write_text("not a voice")
    return folder


def warm_cli(capsys, cache_dir, *paths):
    code = main(["warm", *map(str, paths), "--random-weights", "--cache-dir", str(cache_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def test_warm_prepares_a_folder_recursively_then_finds_it_cached(voices, tmp_path, capsys):
    cache_dir = tmp_path / "cache"
    code, out, err = warm_cli(capsys, cache_dir, voices)
    assert code == 0
    assert "2 new, 0 already cached, 0 failed" in out
    assert "random weights" in err.lower()
    assert len(list((cache_dir / "entries").glob("*.safetensors"))) == 2

    code, out, _ = warm_cli(capsys, cache_dir, voices / "*.wav", voices / "nested")
    assert code == 0
    assert "0 new, 2 already cached, 0 failed" in out


def test_warm_looks_voices_up_before_it_loads_a_model(voices, tmp_path, capsys, monkeypatch):
    cache_dir = tmp_path / "cache"
    assert warm_cli(capsys, cache_dir, voices / "carol.wav")[0] == 0  # this folder meets the model
    loads = []
    real_load = _voice_commands.load
    monkeypatch.setattr(_voice_commands, "load", lambda *a: loads.append(1) or real_load(*a))

    code, out, _ = warm_cli(capsys, cache_dir, voices / "carol.wav")
    assert (code, loads) == (0, [])  # every clip cached: no model at all
    assert "0 new, 1 already cached, 0 failed" in out

    code, out, _ = warm_cli(capsys, cache_dir, voices)
    assert (code, loads) == (0, [1])  # dave is new: loaded once, for him only
    assert "1 new, 1 already cached, 0 failed" in out


def test_the_key_warm_predicts_is_the_key_the_loaded_model_uses(
    components, clips, tmp_path, capsys
):
    cache_dir = tmp_path / "cache"
    assert warm_cli(capsys, cache_dir, clips["alice"])[0] == 0
    hasher = FileHasher()
    ident = identity("english", "cpu", random_weights=True, hasher=hasher)
    predicted = ModelProfile.load(cache_dir, ident).key(hasher.hash(clips["bob"]))

    model = random_model(
        CachedChatterboxTTS, components=components, cache=ConditionalCache(cache_dir)
    )
    model.prepare_conditionals(clips["bob"])  # a clip the profile never saw

    assert DiskStore(cache_dir).path_for(predicted).is_file()
    assert cache_in_use() is model.cache  # and %tts_cache now shows this cache


def test_warm_exits_1_when_what_it_prepared_could_not_be_stored(
    voices, tmp_path, capsys, monkeypatch
):
    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DiskStore, "write_bytes", disk_full)
    code, out, err = warm_cli(capsys, tmp_path / "cache", voices / "carol.wav")
    assert code == 1
    assert "1 new, 0 already cached, 0 failed" in out
    assert err.strip().splitlines()[-1] == (
        f"cached-tts: error: 1 prepared voice was not stored in {tmp_path / 'cache'} "
        "(see the warnings above); nothing outlives this command"
    )


def test_warm_prints_only_its_summary_on_stdout(voices, tmp_path, capsys):
    code, out, err = warm_cli(capsys, tmp_path / "cache", voices / "carol.wav")
    assert code == 0
    assert out == f"1 new, 0 already cached, 0 failed (cache: {tmp_path / 'cache'})\n"
    assert "Loading the english model (random weights): done in" in err
    assert "Reference mel length" not in err  # upstream's warning, kept for -v


def test_warm_reports_each_failure_exits_1_and_still_prepares_the_rest(voices, tmp_path, capsys):
    not_audio = voices / "broken.wav"
    not_audio.write_text("this is not audio")
    under_a_file = voices / "carol.wav" / "inside"
    code, out, err = warm_cli(
        capsys, tmp_path / "cache", voices / "carol.wav", not_audio, under_a_file, "nope-*.wav"
    )
    assert code == 1
    assert "1 new, 0 already cached, 3 failed" in out
    assert f"failed {not_audio}" in out
    assert "a part of this path is a file" in out
    assert "no file matches" in out
    assert err.strip().splitlines()[-1].startswith("cached-tts: error:")
    assert "Traceback" not in err


def test_the_warm_api_returns_new_cached_and_failed(components, clips, tmp_path):
    model = random_model(
        CachedChatterboxTTS, components=components, cache=ConditionalCache(tmp_path)
    )
    model.prepare_conditionals(clips["alice"])
    serving = model.conds

    summary = cached_tts.warm(model, [clips["alice"], clips["bob"], tmp_path / "missing.wav"])

    assert summary.cached == [clips["alice"]]
    assert summary.new == [clips["bob"]]
    assert [path for path, _ in summary.failed] == [str(tmp_path / "missing.wav")]
    assert not summary.ok
    assert model.conds is serving  # warming leaves the voice being served alone


def test_background_warm_takes_turns_on_the_model_lock(components, clips, tmp_path):
    model = random_model(
        CachedChatterboxTTS, components=components, cache=ConditionalCache(tmp_path)
    )
    started = threading.Event()

    with model_lock(model):  # what generate holds while it runs
        future = cached_tts.warm(
            model, [clips["alice"]], background=True, progress=lambda *_: started.set()
        )
        assert not started.wait(0.5)  # it cannot prepare while generate holds the model
        assert not future.done()
    summary = future.result(timeout=120)

    assert summary.new == [clips["alice"]]
    model.prepare_conditionals(clips["alice"])
    assert model.cache.stats().memory_hits == 1  # ready in the cache the moment it is done


def test_say_writes_a_wav_in_the_voice_and_reports_cache_hits(short_generation, tmp_path, capsys):
    cache_dir = tmp_path / "cache"
    assert warm_cli(capsys, cache_dir, short_generation)[0] == 0
    out_wav = tmp_path / "hello.wav"

    code = main(
        [
            *("say", "Hi.", "--voice", short_generation, "--out", str(out_wav)),
            *("--random-weights", "--cache-dir", str(cache_dir)),
        ]
    )
    out, _ = capsys.readouterr()

    assert code == 0
    audio, rate = soundfile.read(out_wav)
    assert rate == 24_000
    assert len(audio) > 0
    assert "1 cache hit, 0 misses" in out
    assert "noise" in out


def test_say_with_a_missing_voice_is_a_one_line_error(tmp_path, capsys):
    code = main(["say", "Hi.", "--voice", str(tmp_path / "nobody.wav"), "--random-weights"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("cached-tts: error: voice clip")
    assert "Traceback" not in err


def test_say_refuses_one_wav_out_for_several_texts_before_loading_a_model(
    tmp_path, monkeypatch, capsys
):
    texts = tmp_path / "lines.txt"
    texts.write_text("one\n\ntwo\n")
    monkeypatch.setattr(
        "cached_tts._cli.voice_commands.load", lambda _args: pytest.fail("loaded a model")
    )
    # A --out that is a .wav cannot hold two files: refused before loading any model.
    code = main(["say", "--texts", str(texts), "--voice", __file__, "--out", "x.wav"])
    assert code == 1
    assert "give --out a folder" in capsys.readouterr().err


def test_warm_remote_prepares_each_voice_once_for_a_fleet(voices, tmp_path, redis_url, capsys):
    code, out, _ = warm_cli(capsys, tmp_path / "a", voices, "--remote", redis_url)
    assert code == 0
    assert "2 new, 0 already cached, 0 failed" in out
    # Another machine, with an empty folder, gets both from Redis.
    code, out, _ = warm_cli(capsys, tmp_path / "b", voices, "--remote", redis_url)
    assert code == 0
    assert "0 new, 2 already cached, 0 failed" in out
    for machine in "ab":
        assert len(list((tmp_path / machine / "entries").glob("*.safetensors"))) == 2
    assert main(["verify", "--cache-dir", str(tmp_path / "b"), "--remote", redis_url]) == 0
    assert "2 entries checked in Redis, 0 damaged" in capsys.readouterr().out


# -- the look-up before a model loads -------------------------------------------


def test_the_look_up_before_loading_takes_no_lock_and_no_lease(
    voices, tmp_path, capsys, monkeypatch, redis_url
):
    cache_dir = tmp_path / "cache"
    assert warm_cli(capsys, cache_dir, voices / "carol.wav", "--remote", redis_url)[0] == 0
    locks = DiskStore(cache_dir).locks_dir
    for lock in locks.iterdir():
        lock.unlink()  # what the first run left, as any process may
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    seen = {}
    real_load = _voice_commands.load

    def load_after_the_look(*args):
        seen["locks"] = sorted(path.name for path in locks.iterdir())
        seen["sets"] = client.info("commandstats").get("cmdstat_set")  # a lease is a SET NX
        return real_load(*args)

    monkeypatch.setattr(_voice_commands, "load", load_after_the_look)
    code, out, _ = warm_cli(capsys, cache_dir, voices, "--remote", redis_url)  # dave is new

    assert (code, seen) == (0, {"locks": [], "sets": None})
    assert "1 new, 1 already cached, 0 failed" in out


def test_a_clip_that_keeps_changing_is_skipped_and_the_rest_is_warmed(
    voices, tmp_path, capsys, monkeypatch
):
    cache_dir = tmp_path / "cache"
    assert warm_cli(capsys, cache_dir, voices / "carol.wav")[0] == 0  # remembers the profile
    real_hash = FileHasher.hash

    def carol_keeps_changing(self, path, *args, **kwargs):
        if str(path).endswith("carol.wav"):
            raise ContentChangedError(f"{path} kept changing while it was read")
        return real_hash(self, path, *args, **kwargs)

    monkeypatch.setattr(FileHasher, "hash", carol_keeps_changing)
    code, out, _ = warm_cli(capsys, cache_dir, voices)

    assert code == 1
    assert "1 new, 0 already cached, 1 failed" in out
    assert "carol.wav kept changing while it was read" in out
    assert len(list((cache_dir / "entries").glob("*.safetensors"))) == 2  # dave's is there


def test_warm_never_says_cached_under_a_profile_of_other_versions(
    voices, tmp_path, capsys, monkeypatch
):
    cache_dir = tmp_path / "cache"
    assert warm_cli(capsys, cache_dir, voices / "carol.wav")[0] == 0
    loads = []
    real_load = _voice_commands.load
    monkeypatch.setattr(_voice_commands, "load", lambda *a: loads.append(1) or real_load(*a))
    # soxr upgraded: every key production computes now names the new version.
    upgraded = tuple(
        (name, "99.0" if name == "version:soxr" else version)
        for name, version in _versions.library_versions()
    )
    monkeypatch.setattr(_versions, "library_versions", lambda: upgraded)
    monkeypatch.setattr(_keys, "library_versions", lambda: upgraded)
    _keys._settings.cache_clear()  # settings computed under the old versions
    try:
        code, out, _ = warm_cli(capsys, cache_dir, voices / "carol.wav")
    finally:
        _keys._settings.cache_clear()

    assert (code, loads) == (0, [1])  # the profile was not trusted: the model was loaded
    assert "1 new, 0 already cached, 0 failed" in out
