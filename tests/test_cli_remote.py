"""``--remote``: every cache subcommand and the Redis tier, against a real redis-server.

Entries are small fakes written through ``ConditionalCache(..., remote=url)``;
no Chatterbox model is built (the voice commands get a fake one).
"""

import hashlib
import io
import json
import sys
import time

import pytest
import redis
import torch
from redis_server import free_port, keys_of
from strategies import voice_entry

from cached_tts import ConditionalCache, EntryKey
from cached_tts._cli import main
from cached_tts._entries.entry import Entry
from cached_tts._entries.format import encode
from cached_tts._tiers.disk.store import DiskStore
from cached_tts._tiers.redis.settings import RemoteSettings
from cached_tts._tiers.redis.tier import RemoteTier
from cached_tts.testing import write_voice_clip

SUBCOMMANDS = ["demo", "say", "warm", "ls", "stats", "verify", "prune", "clear", "rm"]
NEEDS_REDIS = [
    ["stats"],
    ["ls"],
    ["verify"],
    ["verify", "--fix"],
    ["clear", "--yes"],
    ["prune", "--older-than", "1d"],
]


def key(name: str) -> EntryKey:
    return EntryKey(content=name * 64, weights="weights:" + "ab" * 32, settings=())


def entry(value: float = 1.0) -> Entry:
    return voice_entry(value, prepare_seconds=0.5)


def name_of(name: str, prefix: str = "cached-tts:") -> str:
    return f"{prefix}entry:{key(name).digest}"


# Setting up a test is no lookup: wait for a loaded machine's loopback server,
# where a lookup's 0.5 s connect timeout would drop the write and the test would
# fail later for a reason of its own.
PATIENT = RemoteSettings(connect_timeout=30.0, read_timeout=30.0)


def fill(folder, url, names) -> None:
    """Prepare each fake voice through a cache on ``folder`` that shares ``url``."""
    cache = ConditionalCache(folder, remote=url, remote_settings=PATIENT)
    for name in names:
        cache.get_or_prepare(key(name), entry, source=f"/voices/{name}.wav")
    assert cache.stats().remote_errors == 0, "the test's setup could not write to the tier"


@pytest.fixture(autouse=True)
def _no_remote_from_the_environment(monkeypatch):
    monkeypatch.delenv("CACHED_TTS_REMOTE", raising=False)


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def fleet(tmp_path, folder, redis_url):
    """Entries a and b on this machine's disk and in Redis; c only in Redis (another machine's)."""
    fill(folder, redis_url, "ab")
    fill(tmp_path / "other-machine", redis_url, "c")
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def env_remote(redis_url, monkeypatch):
    """$CACHED_TTS_REMOTE names the test's Redis."""
    monkeypatch.setenv("CACHED_TTS_REMOTE", redis_url)
    return redis_url


@pytest.fixture
def unreachable():
    return f"redis://127.0.0.1:{free_port()}/0"


def run(capsys, *argv):
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def entry_names(url: str, prefix: str = "cached-tts:") -> list[bytes]:
    return [k for k in keys_of(url) if k.startswith(f"{prefix}entry:".encode())]


# -- every subcommand -------------------------------------------------------------


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_with_cache_dir_takes_remote(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "--cache-dir" in help_text
    assert "--remote URL" in help_text
    assert "$CACHED_TTS_REMOTE" in help_text


# -- stats ------------------------------------------------------------------------


def test_stats_reports_redis_entries_and_their_bytes(folder, fleet, redis_url, capsys):
    code, out, _ = run(capsys, "stats", "--json", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    figures = json.loads(out)
    assert figures["entries"] == 2  # the disk
    sizes = [fleet.strlen(name_of(n)) for n in "abc"]
    assert figures["remote"] == [
        {
            "url": redis_url,
            "where": f"Redis at {redis_url} (prefix 'cached-tts:')",
            "label": "Redis",
            "entries": 3,
            "bytes": sum(sizes),
        }
    ]
    code, out, _ = run(capsys, "stats", "--cache-dir", folder, "--remote", redis_url)
    assert "Redis tier:          3 entries" in out


@pytest.mark.usefixtures("fleet", "env_remote")
def test_stats_takes_the_redis_url_from_the_environment(folder, capsys):
    figures = json.loads(run(capsys, "stats", "--json", "--cache-dir", folder)[1])
    assert figures["remote"][0]["entries"] == 3
    figures = json.loads(run(capsys, "stats", "--json", "--cache-dir", folder, "--remote", "")[1])
    assert figures["remote"] is None


@pytest.mark.usefixtures("fleet")
def test_stats_without_remote_says_redis_is_not_in_use(folder, capsys):
    assert json.loads(run(capsys, "stats", "--json", "--cache-dir", folder)[1])["remote"] is None
    assert "not in use" in run(capsys, "stats", "--cache-dir", folder)[1]


# -- ls ---------------------------------------------------------------------------


def test_ls_says_which_disk_entries_are_in_a_shared_tier_and_lists_those_only_there(
    folder, fleet, redis_url, capsys
):
    fleet.delete(name_of("b"))
    code, out, _ = run(capsys, "ls", "--json", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    rows = {row["source"]: row for row in json.loads(out)}
    assert set(rows) == {"/voices/a.wav", "/voices/b.wav", "/voices/c.wav"}
    assert (rows["/voices/a.wav"]["on_disk"], rows["/voices/a.wav"]["in_shared"]) == (True, True)
    assert (rows["/voices/b.wav"]["on_disk"], rows["/voices/b.wav"]["in_shared"]) == (True, False)
    only = rows["/voices/c.wav"]
    assert (only["on_disk"], only["in_shared"], only["file"]) == (False, True, None)
    # The deprecated name still says the same.
    assert all(row["in_redis"] is row["in_shared"] for row in rows.values())
    assert only["created"] is not None
    assert only["size"] == fleet.strlen(name_of("c"))
    assert only["content_hash"] == "c" * 64

    code, out, _ = run(capsys, "ls", "--cache-dir", folder, "--remote", redis_url)
    lines = out.strip().splitlines()
    assert "SHARED" in lines[0].split()
    cells = {line.split()[-1]: line.split() for line in lines[1:]}
    assert "yes" in cells["/voices/a.wav"]
    assert "no" in cells["/voices/b.wav"]
    assert "only" in cells["/voices/c.wav"]


@pytest.mark.usefixtures("fleet")
def test_ls_without_remote_has_no_redis_column(folder, capsys):
    code, out, _ = run(capsys, "ls", "--cache-dir", folder)
    assert code == 0
    assert "SHARED" not in out
    assert "/voices/c.wav" not in out
    rows = json.loads(run(capsys, "ls", "--json", "--cache-dir", folder)[1])
    assert {(row["in_shared"], row["in_redis"]) for row in rows} == {(None, None)}


def test_ls_of_an_empty_folder_and_redis_says_so(folder, redis_url, capsys):
    code, out, _ = run(capsys, "ls", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert "No entries" in out
    assert "Redis" in out


# -- verify -----------------------------------------------------------------------


@pytest.mark.usefixtures("fleet")
def test_verify_remote_passes_sound_values(folder, redis_url, capsys):
    code, out, _ = run(capsys, "verify", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert "3 entries checked in Redis, 0 damaged" in out


def test_verify_reports_a_damaged_redis_value_and_fix_deletes_only_it(
    folder, fleet, redis_url, capsys
):
    good = fleet.get(name_of("c"))
    fleet.set(name_of("c"), good[:-1] + bytes([good[-1] ^ 0xFF]))
    code, out, err = run(capsys, "verify", "--cache-dir", folder, "--remote", redis_url)
    assert code == 1
    assert f"damaged {name_of('c')} in Redis" in out
    assert "verify --fix" in err
    assert fleet.exists(name_of("c"))

    code, out, _ = run(capsys, "verify", "--fix", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert f"removed {name_of('c')} from Redis" in out
    assert sorted(entry_names(redis_url)) == sorted(name_of(n).encode() for n in "ab")
    assert run(capsys, "verify", "--cache-dir", folder, "--remote", redis_url)[0] == 0


def test_verify_catches_a_redis_value_stored_under_another_entrys_name(
    folder, fleet, redis_url, capsys
):
    fleet.set(name_of("a"), fleet.get(name_of("b")))  # sound bytes, wrong name
    code, out, _ = run(capsys, "verify", "--cache-dir", folder, "--remote", redis_url)
    assert code == 1
    assert "does not match the stored key" in out
    assert run(capsys, "verify", "--fix", "--cache-dir", folder, "--remote", redis_url)[0] == 0
    assert not fleet.exists(name_of("a"))


def test_a_value_of_the_wrong_type_is_listed_as_damaged_and_fix_deletes_it(
    folder, fleet, redis_url, capsys
):
    fleet.delete(name_of("c"))
    fleet.rpush(name_of("c"), b"not an entry")  # a list where an entry belongs

    code, out, _ = run(capsys, "ls", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    code, out, _ = run(capsys, "verify", "--cache-dir", folder, "--remote", redis_url)
    assert code == 1
    assert f"damaged {name_of('c')} in Redis: it holds no entry" in out
    assert fleet.type(name_of("c")) == b"list"

    code, out, _ = run(capsys, "verify", "--fix", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert f"removed {name_of('c')} from Redis" in out
    assert sorted(entry_names(redis_url)) == sorted(name_of(n).encode() for n in "ab")


def spy_on_reads(tier_class, monkeypatch):
    """The length of every value a tier of ``tier_class`` reads for a command."""
    real = tier_class.read
    lengths = []

    def read(self, digest):
        data = real(self, digest)
        lengths.append(len(data or b""))
        return data

    monkeypatch.setattr(tier_class, "read", read)
    return lengths


def check_an_oversized_value_is_listed_damaged_and_fixed(
    capsys, folder, remote, *, digest, name, where, size
):
    """``ls`` lists the value under ``name`` as damaged; ``verify`` flags it, ``--fix`` drops it."""
    code, out, _ = run(capsys, "ls", "--json", "--cache-dir", folder, "--remote", remote)
    assert code == 0
    row = {row["hash"]: row for row in json.loads(out)}[digest]
    assert "over max_value_bytes" in row["damaged"]
    assert row["size"] == size  # the listing's size, not what was read
    code, out, _ = run(capsys, "verify", "--cache-dir", folder, "--remote", remote)
    assert code == 1
    assert f"damaged {name} in {where}: it is over max_value_bytes" in out

    code, out, _ = run(capsys, "verify", "--fix", "--cache-dir", folder, "--remote", remote)
    assert code == 0
    assert f"removed {name} from {where}" in out


def test_a_value_over_the_size_limit_is_read_no_further_listed_damaged_and_fix_deletes_it(
    folder, fleet, redis_url, capsys, monkeypatch
):
    # The default limit, as lookups have it: 8 MiB, and a value of 8 MiB and 64 KiB.
    limit = RemoteSettings().max_value_bytes
    fleet.set(name_of("c"), b"\0" * (limit + 65536))
    lengths = spy_on_reads(RemoteTier, monkeypatch)

    check_an_oversized_value_is_listed_damaged_and_fixed(
        capsys,
        folder,
        redis_url,
        digest=key("c").digest,
        name=name_of("c"),
        where="Redis",
        size=limit + 65536,
    )
    assert sorted(entry_names(redis_url)) == sorted(name_of(n).encode() for n in "ab")
    assert lengths
    assert max(lengths) == limit + 1


@pytest.mark.usefixtures("env_remote")
def test_verify_takes_the_redis_url_from_the_environment(folder, fleet, capsys):
    fleet.set(name_of("c"), b"not an entry")
    code, out, _ = run(capsys, "verify", "--cache-dir", folder)
    assert code == 1
    assert name_of("c") in out


# -- clear ------------------------------------------------------------------------


def test_clear_remote_removes_only_this_prefixs_entries(folder, fleet, redis_url, capsys):
    fleet.set(name_of("z", prefix="other-fleet:"), b"theirs")
    code, out, _ = run(capsys, "clear", "--yes", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert "Removed 3 entries from Redis" in out
    assert entry_names(redis_url) == []
    assert keys_of(redis_url) == [name_of("z", prefix="other-fleet:").encode()]
    assert DiskStore(folder).files() == []


@pytest.mark.usefixtures("fleet")
def test_clear_without_remote_leaves_redis_alone_even_with_the_environment_set(
    folder, env_remote, capsys
):
    redis_url = env_remote
    before = keys_of(redis_url)
    assert run(capsys, "clear", "--yes", "--cache-dir", folder)[0] == 0
    assert keys_of(redis_url) == before
    assert DiskStore(folder).files() == []


@pytest.mark.usefixtures("fleet")
def test_clear_remote_asks_about_the_fleets_entries_first(folder, redis_url, capsys, monkeypatch):
    prompts = []
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "n")
    code, out, _ = run(capsys, "clear", "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert "Nothing removed" in out
    assert "all 3 entries in Redis" in prompts[0]
    assert "fleet" in prompts[0]
    assert len(entry_names(redis_url)) == 3


# -- prune ------------------------------------------------------------------------


def test_prune_remote_older_than_removes_redis_values_created_that_long_ago(
    folder, fleet, redis_url, capsys
):
    ten_days_ago = time.time() - 10 * 86400
    fleet.set(name_of("d"), encode(key("d"), entry(), source="old.wav", created=ten_days_ago))
    code, out, _ = run(
        capsys, "prune", "--older-than", "9d", "--cache-dir", folder, "--remote", redis_url
    )
    assert code == 0
    assert "Removed 1 entry created before" in out
    assert not fleet.exists(name_of("d"))
    assert len(entry_names(redis_url)) == 3
    assert len(DiskStore(folder).files()) == 2  # used just now


@pytest.mark.usefixtures("fleet")
def test_prune_max_bytes_applies_to_the_disk_only(folder, redis_url, capsys):
    before = keys_of(redis_url)
    code, out, _ = run(
        capsys, "prune", "--max-bytes", "0", "--cache-dir", folder, "--remote", redis_url
    )
    assert code == 0
    assert "disk only" in out
    assert DiskStore(folder).files() == []
    assert keys_of(redis_url) == before


def test_prune_without_remote_leaves_redis_alone_even_with_the_environment_set(
    folder, env_remote, capsys
):
    redis_url = env_remote
    redis.Redis.from_url(redis_url).set(
        name_of("d"), encode(key("d"), entry(), source="old.wav", created=0.0)
    )
    assert run(capsys, "prune", "--older-than", "1d", "--cache-dir", folder)[0] == 0
    assert entry_names(redis_url) == [name_of("d").encode()]


# -- unreachable Redis ------------------------------------------------------------


@pytest.mark.parametrize("command", NEEDS_REDIS, ids=" ".join)
def test_unreachable_redis_is_one_error_line_and_exit_1(command, folder, unreachable, capsys):
    fill(folder, None, "ab")
    code, _, err = run(capsys, *command, "--cache-dir", folder, "--remote", unreachable)
    assert code == 1
    assert err.startswith(f"cached-tts: error: cannot use Redis at {unreachable}:")
    assert err.count("\n") == 1
    assert len(DiskStore(folder).files()) == 2  # nothing done before the error


def test_a_password_in_the_url_is_never_printed(folder, capsys):
    url = f"redis://tts:s3cret@127.0.0.1:{free_port()}/0"
    code, _, err = run(capsys, "stats", "--cache-dir", folder, "--remote", url)
    assert code == 1
    assert "s3cret" not in err
    assert "tts:***@127.0.0.1" in err


# -- rm and forget ------------------------------------------------------------------


@pytest.fixture
def alice(tmp_path, folder, redis_url):
    """Alice's clip: on this disk and in Redis for one model, only in Redis for another."""
    clip = tmp_path / "alice.wav"
    clip.write_bytes(b"alice" * 50)
    content = hashlib.sha256(clip.read_bytes()).hexdigest()
    for where, weights in ((folder, "weights:a"), (tmp_path / "other-machine", "weights:b")):
        cache = ConditionalCache(where, remote=redis_url)
        cache.get_or_prepare(EntryKey(content, weights, ()), entry, source=str(clip))
    fill(tmp_path / "third-machine", redis_url, "c")  # someone else's voice
    return clip


def test_rm_clip_remote_erases_it_from_disk_and_the_fleets_redis(folder, alice, redis_url, capsys):
    code, out, _ = run(capsys, "rm", alice, "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert f"Removed 2 entries made from {alice}" in out
    assert entry_names(redis_url) == [name_of("c").encode()]
    assert DiskStore(folder).files() == []


@pytest.mark.usefixtures("fleet")
def test_rm_hash_remote_removes_an_entry_only_redis_has(folder, redis_url, capsys):
    only_in_redis = key("c").digest
    code, _, _ = run(capsys, "rm", only_in_redis[:8], "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert name_of("c").encode() not in entry_names(redis_url)
    assert len(entry_names(redis_url)) == 2


def test_rm_without_remote_leaves_redis_alone_even_with_the_environment_set(
    folder, alice, env_remote, capsys
):
    assert run(capsys, "rm", alice, "--cache-dir", folder)[0] == 0
    assert DiskStore(folder).files() == []
    assert len(entry_names(env_remote)) == 3


def test_forget_erases_a_voice_from_every_tier_of_the_cache(folder, alice, redis_url):
    cache = ConditionalCache(folder, remote=redis_url)
    assert cache.forget(alice) == 2
    assert entry_names(redis_url) == [name_of("c").encode()]
    assert DiskStore(folder).files() == []


# -- the voice commands (a fake model) --------------------------------------------


class FakeModel:
    """Prepares a voice through its cache like a cached Chatterbox model; no weights."""

    sr = 24000

    def __init__(self, cache):
        self.cache = cache
        self.conds = None

    def prepare_conditionals(self, path, exaggeration=0.5):
        content = self.cache.content_hash(path)
        found = EntryKey(content=content, weights="weights:fake", settings=())
        self.conds = (self.cache.get_or_prepare(found, entry, source=path), exaggeration)

    def generate(self, _text, audio_prompt_path, **_options):
        self.prepare_conditionals(audio_prompt_path)
        return torch.zeros(1, 240)


@pytest.fixture
def fake_model(monkeypatch):
    """Every command that loads a model gets a :class:`FakeModel`; the caches they built."""
    caches = []

    def load_model(_name, *, cache, **_options):
        caches.append(cache)
        return FakeModel(cache)

    monkeypatch.setattr("cached_tts._cli.loading.load_model", load_model)
    monkeypatch.setattr(
        "cached_tts._cli.demo._load",
        lambda _device, cache, **_: (load_model("", cache=cache), True),
    )
    return caches


@pytest.fixture
def voices(tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    for seed, name in enumerate(("alice", "bob")):
        write_voice_clip(folder / f"{name}.wav", seconds=0.2, seed=seed)
    return folder


@pytest.mark.usefixtures("fake_model")
def test_warm_remote_prepares_voices_into_redis(folder, voices, redis_url, capsys):
    code, out, _ = run(capsys, "warm", voices, "--cache-dir", folder, "--remote", redis_url)
    assert code == 0
    assert "2 new" in out
    assert f"shared: {redis_url}" in out
    assert len(entry_names(redis_url)) == 2
    # Another machine, with an empty folder, finds them in Redis.
    code, out, _ = run(
        capsys, "warm", voices, "--cache-dir", folder.parent / "b", "--remote", redis_url
    )
    assert "0 new, 2 already cached" in out


def test_warm_takes_the_redis_url_from_the_environment_and_empty_turns_it_off(
    folder, voices, env_remote, fake_model, capsys
):
    redis_url = env_remote
    assert run(capsys, "warm", voices, "--cache-dir", folder, "--remote", "")[0] == 0
    assert entry_names(redis_url) == []
    assert fake_model[-1]._tiers == ()
    assert run(capsys, "warm", voices, "--cache-dir", folder.parent / "b")[0] == 0
    assert len(entry_names(redis_url)) == 2


def test_warm_without_remote_uses_no_redis(folder, voices, fake_model, capsys):
    assert run(capsys, "warm", voices, "--cache-dir", folder)[0] == 0
    assert fake_model[-1]._tiers == ()


@pytest.mark.usefixtures("fake_model")
def test_warm_with_unreachable_redis_warns_and_still_prepares(folder, voices, unreachable, capsys):
    code, out, err = run(capsys, "warm", voices, "--cache-dir", folder, "--remote", unreachable)
    assert code == 0
    assert "2 new" in out
    assert f"cached-tts: warning: cannot use Redis at {unreachable}" in err
    assert len(DiskStore(folder).files()) == 2


def test_say_remote_serves_the_voice_from_redis(tmp_path, voices, redis_url, fake_model, capsys):
    voice = voices / "alice.wav"
    run(capsys, "warm", voice, "--cache-dir", tmp_path / "warmer", "--remote", redis_url)
    out_file = tmp_path / "hi.wav"
    code, _, _ = run(
        capsys,
        *("say", "Hi.", "--voice", voice, "--out", out_file),
        *("--cache-dir", tmp_path / "speaker", "--remote", redis_url),
    )
    assert code == 0
    assert out_file.exists()
    assert fake_model[-1].stats().remote_hits == 1


def test_demo_remote_shares_its_preparations_through_redis(
    folder, voices, redis_url, fake_model, capsys
):
    code, out, _ = run(
        capsys,
        *("demo", "--no-generate", "--random-weights", "--voice", voices / "alice.wav"),
        *("--cache-dir", folder, "--remote", redis_url),
    )
    assert code == 0
    assert f"Shared tiers: {redis_url}" in out
    assert len(entry_names(redis_url)) == 1
    assert all(cache._tiers for cache in fake_model)
