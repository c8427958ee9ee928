"""Erasing a voice: ``cached-tts rm HASH|CLIP`` and ``ConditionalCache.forget``."""

import hashlib

import pytest
from strategies import voice_entry

from cached_tts import ConditionalCache, EntryKey
from cached_tts._cli import main
from cached_tts._cli.options import CommandError
from cached_tts._cli.remove import _resolve
from cached_tts._tiers.disk.store import DiskStore


def entry():
    return voice_entry(prepare_seconds=0.5)


def key(content, weights="weights:a", settings=()):
    return EntryKey(content=content, weights=weights, settings=settings)


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "alice.wav"
    path.write_bytes(b"alice's voice" * 100)
    return path


@pytest.fixture
def folder(tmp_path, clip):
    """Alice's clip prepared for two models and two settings, and one other voice."""
    cache = ConditionalCache(tmp_path / "cache", remote=None)
    alice = cache.content_hash(clip)
    for weights, settings in (("weights:a", ()), ("weights:b", ()), ("weights:a", (("d", "x"),))):
        cache.get_or_prepare(key(alice, weights, settings), entry, source=str(clip))
    cache.get_or_prepare(key("b" * 64), entry, source="/voices/bob.wav")
    return tmp_path / "cache"


def names(folder):
    return {f.path.stem for f in DiskStore(folder).files()}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_rm_clip_removes_every_entry_made_from_it_for_any_model_and_settings(folder, clip, capsys):
    bob = key("b" * 64).digest
    code, out, _ = run(capsys, "rm", clip, "--cache-dir", folder)
    assert code == 0
    assert names(folder) == {bob}
    assert f"Removed 3 entries made from {clip}" in out


def test_rm_takes_any_unique_prefix_of_the_hash_ls_shows(folder, capsys):
    code, out, _ = run(capsys, "ls", "--cache-dir", folder)
    shown = {line.split()[0] for line in out.splitlines()[1:]}
    victim = min(shown)
    code, out, _ = run(capsys, "rm", victim[:6], "--cache-dir", folder)
    assert code == 0
    assert len(names(folder)) == 3
    assert not any(name.startswith(victim) for name in names(folder))
    assert f"Removed {victim}" in out


def test_rm_refuses_an_ambiguous_or_unknown_prefix_and_removes_nothing(folder, capsys):
    before = names(folder)
    digits = "0123456789abcdef"
    counts = {d: sum(n.startswith(d) for n in before) for d in digits}
    unknown = next(d for d in digits if counts[d] == 0) * 4
    code, _, err = run(capsys, "rm", min(before), unknown, "--cache-dir", folder)
    assert code == 1
    assert err == f"cached-tts: error: no entry's hash starts with {unknown}; see `cached-tts ls`\n"
    assert names(folder) == before  # every argument is checked before anything goes


def test_a_prefix_that_starts_several_hashes_is_refused():
    with pytest.raises(CommandError, match="abcd starts 2 entries' hashes; give more digits"):
        _resolve(["abcd"], {"abcd" + "1" * 60, "abcd" + "2" * 60, "ef" * 32})


def test_rm_of_something_neither_a_file_nor_a_hash_says_what_it_takes(folder, capsys):
    code, _, err = run(capsys, "rm", "alice.wav", "--cache-dir", folder)
    assert code == 1
    assert "neither a clip file nor a hash" in err


def test_forget_drops_a_voice_from_memory_and_disk_by_path_or_bytes(tmp_path, clip):
    cache = ConditionalCache(tmp_path / "cache", remote=None)
    alice = cache.content_hash(clip)
    calls = []

    def prepare():
        calls.append(1)
        return entry()

    for weights in ("weights:a", "weights:b"):
        cache.get_or_prepare(key(alice, weights), prepare, source=str(clip))
    cache.get_or_prepare(key("b" * 64), prepare, source="/voices/bob.wav")

    assert cache.forget(clip) == 2
    assert names(cache.directory) == {key("b" * 64).digest}
    cache.get_or_prepare(key(alice), prepare, source=str(clip))
    assert len(calls) == 4  # prepared again: not served from memory
    assert cache.forget(clip.read_bytes()) == 1  # the clip's bytes name it too
    assert cache.stats().entries == 1  # only bob's left in memory


def test_forget_works_on_a_memory_only_cache(clip):
    cache = ConditionalCache(None, remote=None)
    alice = hashlib.sha256(clip.read_bytes()).hexdigest()
    cache.get_or_prepare(key(alice), entry, source=str(clip))
    assert cache.forget(clip) == 1
    assert cache.stats().entries == 0
