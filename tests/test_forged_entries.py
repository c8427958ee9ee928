"""A forged entry (header edited, checksum recomputed) is damage: recomputed, listed, repaired."""

from __future__ import annotations

import json

import pytest
import redis
from strategies import forge, voice_entry

from cached_tts import ConditionalCache, EntryKey
from cached_tts._cli import main
from cached_tts._entries.format import decode, encode

KEY = EntryKey(content="a" * 64, weights="w" * 64, settings=(("device", "cpu"),))


def drop_t3_field(header):
    """Remove a T3Cond field: T3Cond would default it to None, a wrong voice."""
    header.pop("t3.cond_prompt_speech_tokens")
    metadata = header["__metadata__"]
    fields = json.loads(metadata["fields"])
    metadata["fields"] = json.dumps([n for n in fields if n != "t3.cond_prompt_speech_tokens"])


# The examples the issue names; each made a lookup raise, and verify --fix exit 1.
FORGERIES = {
    "layout not an object": lambda h: h["__metadata__"].update(layout="[1]"),
    "absent not strings": lambda h: h["__metadata__"].update(absent="[1]"),
    "infinite offset": lambda h: h["gen.embedding"].update(data_offsets=[0, float("inf")]),
    "dropped T3Cond field": drop_t3_field,
}


def same_values(entry, expected):
    assert entry.fields == expected.fields
    for name, tensor in expected.tensors.items():
        assert entry.tensors[name].equal(tensor), name


@pytest.fixture(params=list(FORGERIES))
def forged_folder(request, tmp_path):
    """A cache folder whose one entry (voice 1.0 under KEY) has a forged header."""
    folder = tmp_path / "cache"
    ConditionalCache(folder, remote=None).get_or_prepare(KEY, lambda: voice_entry(1.0))
    (path,) = (folder / "entries").glob("*.safetensors")
    path.write_bytes(forge(path.read_bytes(), FORGERIES[request.param]))
    return folder, path


def test_a_lookup_recomputes_a_forged_entry_and_replaces_its_file(forged_folder):
    folder, path = forged_folder
    cache = ConditionalCache(folder, remote=None)

    got = cache.get_or_prepare(KEY, lambda: voice_entry(2.0))

    same_values(got, voice_entry(2.0))
    assert cache.stats().misses == 1
    stored, _ = decode(path.read_bytes(), KEY)  # the forged file is gone, a whole one in its place
    same_values(stored, voice_entry(2.0))


def test_ls_lists_a_forged_entry_as_damaged_and_verify_fix_removes_it(forged_folder, capsys):
    folder, path = forged_folder

    assert main(["ls", "--cache-dir", str(folder)]) == 0
    assert "(damaged: " in capsys.readouterr().out
    assert main(["verify", "--cache-dir", str(folder)]) == 1
    assert "1 damaged" in capsys.readouterr().out
    assert main(["verify", "--fix", "--cache-dir", str(folder)]) == 0
    assert not path.exists()
    assert main(["verify", "--cache-dir", str(folder)]) == 0


def test_a_forged_value_in_redis_is_recomputed_and_replaced(tmp_path, redis_url):
    client = redis.Redis.from_url(redis_url)
    name = f"cached-tts:entry:{KEY.digest}"
    client.set(name, forge(encode(KEY, voice_entry(1.0), source="", created=0.0), drop_t3_field))
    cache = ConditionalCache(tmp_path / "cache", remote=redis_url)

    got = cache.get_or_prepare(KEY, lambda: voice_entry(2.0))

    same_values(got, voice_entry(2.0))
    same_values(decode(client.get(name), KEY)[0], voice_entry(2.0))
    assert cache.stats().remote_errors == 0
