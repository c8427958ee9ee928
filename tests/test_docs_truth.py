"""The docs say what the code does: checked where the code holds the facts."""

from __future__ import annotations

import re
from pathlib import Path

import redis
from strategies import voice_entry

from cached_tts import ConditionalCache, EntryKey, RemoteSettings, TierSettings
from cached_tts._keys.versions import PREPARATION_LIBRARIES

ROOT = Path(__file__).resolve().parent.parent
KEY = EntryKey(content="c" * 64, weights="w", settings=(("device", "cpu"),))


def key_table_settings_row() -> str:
    guide = (ROOT / "docs" / "guide.md").read_text()
    section = guide.split("## What the key is, and why", 1)[1].split("\n## ", 1)[0]
    (row,) = [line for line in section.splitlines() if line.startswith("| `settings` |")]
    return row


def test_the_guides_key_table_names_every_version_the_key_holds():
    row = key_table_settings_row()
    missing = [name for name in (*PREPARATION_LIBRARIES, "libsndfile") if name not in row]
    assert missing == []
    assert "chatterbox" in row
    assert "fork" in row  # a fork's distribution and source digest, not only chatterbox-tts


# -- Redis: how the TTL is refreshed, and the permissions the guide lists ---------


def guide_acl_rules() -> list[str]:
    guide = (ROOT / "docs" / "guide.md").read_text()
    (line,) = [line for line in guide.splitlines() if line.startswith("ACL SETUSER tts ")]
    return line.split()[3:]  # after "ACL SETUSER tts"


def test_the_guides_acl_allows_every_command_the_lua_scripts_run():
    from cached_tts._tiers.redis import tier as _remote

    scripts = _remote._READ_BOUNDED + _remote._DELETE_DAMAGE + _remote._DELETE_IF_EQUAL
    called = set(re.findall(r'redis\.call\("(\w+)"', scripts))
    assert "expire" in called  # the TTL is refreshed by EXPIRE in the read script
    assert {f"+{command}" for command in called} <= set(guide_acl_rules())


def test_the_readme_says_the_ttl_is_refreshed_by_expire_in_a_script():
    readme = (ROOT / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `ttl` |")]
    assert "EXPIRE" in row
    assert "GETEX" not in readme


def test_a_worker_with_exactly_the_guides_redis_permissions_works(tmp_path, redis_url):
    admin = redis.Redis.from_url(redis_url)
    rules = [rule.replace("PASSWORD", "pw") for rule in guide_acl_rules()]
    admin.execute_command("ACL", "SETUSER", "tts", "reset", *rules)
    try:
        url = redis_url.replace("redis://", "redis://tts:pw@")
        settings = RemoteSettings(ttl=100)
        damaged = EntryKey(content="d" * 64, weights="w", settings=(("device", "cpu"),))
        admin.set(f"cached-tts:entry:{damaged.digest}", b"damage")
        caches = [
            ConditionalCache(tmp_path / name, remote=url, remote_settings=settings)
            for name in ("a", "b")
        ]
        for cache in caches:  # a store and its lease, then a bounded read with EXPIRE
            cache.get_or_prepare(KEY, lambda: voice_entry(1.0))
            cache.get_or_prepare(damaged, lambda: voice_entry(2.0))  # damage removed
        assert [cache.stats().remote_errors for cache in caches] == [0, 0]
        assert caches[1].stats().remote_hits == 2
        admin.expire(f"cached-tts:entry:{KEY.digest}", 10)
        ConditionalCache(tmp_path / "c", remote=url, remote_settings=settings).get_or_prepare(
            KEY, lambda: voice_entry(1.0)
        )
        assert admin.ttl(f"cached-tts:entry:{KEY.digest}") > 10  # refreshed by the reader
    finally:
        admin.execute_command("ACL", "DELUSER", "tts")


def test_the_readme_states_both_back_off_policies():
    from cached_tts._tiers.disk.tier import _DISK_BACKOFF

    readme = (ROOT / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `backoff` |")]
    assert f"failures={TierSettings().backoff.failures}" in row
    assert f"failures={_DISK_BACKOFF.failures}" in row
    assert "same back-off policy" not in readme


# -- the command line's read bound ---------------------------------------------


def test_the_readme_says_the_command_line_reads_entries_up_to_8_mib(tmp_path, capsys):
    from cached_tts._cli import main

    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "The command line reads entries up to 8 MiB, whatever bound a program sets" in readme
    assert "`verify --fix` or `warm` removes it" in readme

    eight_mib = 8 << 20
    assert TierSettings().max_value_bytes == eight_mib
    roomy = TierSettings(max_value_bytes=2 * eight_mib)
    cache = ConditionalCache(tmp_path / "cache", remote=None, remote_settings=roomy)
    cache.get_or_prepare(KEY, lambda: voice_entry(floats=(eight_mib + 4096) // 4))
    (entry,) = (tmp_path / "cache" / "entries").iterdir()
    assert entry.stat().st_size > eight_mib  # a valid entry, kept by its writer

    folder = str(tmp_path / "cache")
    assert main(["ls", "--cache-dir", folder, "--remote", ""]) == 0
    assert "damaged" in capsys.readouterr().out
    assert main(["verify", "--cache-dir", folder, "--remote", ""]) == 1
    assert "1 damaged" in capsys.readouterr().out
    assert entry.exists()  # reported, not removed, without --fix

    # warm's cache is made with the default bound: its lookup removes the entry.
    prepared = []
    ConditionalCache(folder, remote=None).get_or_prepare(
        KEY, lambda: prepared.append(1) or voice_entry()
    )
    assert prepared == [1]  # a miss: the large entry was removed, and this one written
    assert entry.stat().st_size < eight_mib
