"""``--remote`` with object stores: the cache subcommands on a bucket of a real S3 API (moto).

The same rules as Redis: ls, stats and verify read every tier named; clear,
prune and rm touch a shared tier only when it is named on their command line.
"""

from __future__ import annotations

import json

import pytest
from redis_server import free_port
from test_cli_remote import (
    _no_remote_from_the_environment,
    check_an_oversized_value_is_listed_damaged_and_fixed,
    entry,
    fake_model,
    fill,
    folder,
    key,
    run,
    spy_on_reads,
    voices,
)
from test_objectstore_s3 import object_of, put_raw

from cached_tts._entries.format import encode
from cached_tts._tiers.base import TierSettings
from cached_tts._tiers.disk.store import DiskStore
from cached_tts._tiers.objectstore.opening import open_object_store
from cached_tts._tiers.objectstore.tier import ObjectStoreTier

# fixtures shared with test_cli_remote
__all__ = ["_no_remote_from_the_environment", "fake_model", "folder", "voices"]


@pytest.fixture
def bucket(tmp_path, folder, s3_url):
    """Entries a and b on this machine's disk and in the bucket; c only in the bucket."""
    fill(folder, s3_url, "ab")
    fill(tmp_path / "other-machine", s3_url, "c")
    return s3_url


def test_ls_lists_what_only_the_bucket_holds(folder, bucket, capsys):
    code, out, _ = run(capsys, "ls", "--json", "--cache-dir", folder, "--remote", bucket)
    assert code == 0
    rows = {row["source"]: row for row in json.loads(out)}
    assert rows["/voices/a.wav"]["in_shared"] is True
    only = rows["/voices/c.wav"]
    assert (only["on_disk"], only["in_shared"], only["file"]) == (False, True, None)
    # A bucket reports under the deprecated Redis-named key too, for older readers.
    assert (rows["/voices/a.wav"]["in_redis"], only["in_redis"]) == (True, True)


def test_stats_counts_each_tier_of_a_comma_separated_list(folder, bucket, redis_url, capsys):
    fill(folder, redis_url, "d")  # Redis holds d only
    remote = f"{redis_url},{bucket}"
    code, out, _ = run(capsys, "stats", "--json", "--cache-dir", folder, "--remote", remote)
    assert code == 0
    figures = json.loads(out)["remote"]
    assert [(f["url"], f["entries"]) for f in figures] == [(redis_url, 1), (bucket, 3)]
    _, out, _ = run(capsys, "stats", "--cache-dir", folder, "--remote", remote)
    assert "Redis tier:          1 entry" in out
    assert f"{bucket} tier: 3 entries" in out


def test_verify_fix_removes_a_damaged_object(folder, bucket, s3_env, capsys):
    other = encode(key("a"), entry(), source="x", created=0.0)
    put_raw(s3_env, bucket, key("c"), other)  # a whole entry under another key's name
    code, out, _ = run(capsys, "verify", "--cache-dir", folder, "--remote", bucket)
    assert code == 1
    assert f"damaged {bucket}/{key('c').digest}.safetensors in {bucket}" in out
    code, out, _ = run(capsys, "verify", "--fix", "--cache-dir", folder, "--remote", bucket)
    assert code == 0
    assert object_of(s3_env, bucket, key("c")) is None
    assert object_of(s3_env, bucket, key("a")) is not None


def test_an_object_over_the_size_limit_is_read_no_further_listed_damaged_and_fix_deletes_it(
    folder, bucket, s3_env, capsys, monkeypatch
):
    # The default limit, as lookups have it: 8 MiB, and an object of 8 MiB and 64 KiB.
    limit = TierSettings().max_value_bytes
    put_raw(s3_env, bucket, key("c"), b"\0" * (limit + 65536))
    lengths = spy_on_reads(ObjectStoreTier, monkeypatch)

    check_an_oversized_value_is_listed_damaged_and_fixed(
        capsys,
        folder,
        bucket,
        digest=key("c").digest,
        name=f"{bucket}/{key('c').digest}.safetensors",
        where=bucket,
        size=limit + 65536,
    )
    assert object_of(s3_env, bucket, key("c")) is None
    assert object_of(s3_env, bucket, key("a")) is not None
    assert lengths
    assert max(lengths) == limit + 1


def test_prune_removes_old_objects_only_when_the_bucket_is_named(
    folder, bucket, s3_env, monkeypatch, capsys
):
    put_raw(s3_env, bucket, key("d"), encode(key("d"), entry(), source="old.wav", created=0.0))
    monkeypatch.setenv("CACHED_TTS_REMOTE", bucket)
    assert run(capsys, "prune", "--older-than", "1d", "--cache-dir", folder)[0] == 0
    assert object_of(s3_env, bucket, key("d")) is not None  # not named: left alone

    code, out, _ = run(
        capsys, "prune", "--older-than", "1d", "--cache-dir", folder, "--remote", bucket
    )
    assert code == 0
    assert "Removed 1 entry created before" in out
    assert object_of(s3_env, bucket, key("d")) is None
    assert object_of(s3_env, bucket, key("a")) is not None  # young


def test_clear_empties_the_bucket_only_when_it_is_named(
    folder, bucket, s3_env, monkeypatch, capsys
):
    monkeypatch.setenv("CACHED_TTS_REMOTE", bucket)
    assert run(capsys, "clear", "--yes", "--cache-dir", folder)[0] == 0
    assert DiskStore(folder).files() == []
    assert object_of(s3_env, bucket, key("c")) is not None

    code, out, _ = run(capsys, "clear", "--yes", "--cache-dir", folder, "--remote", bucket)
    assert code == 0
    assert f"Removed 3 entries from {bucket}." in out
    assert all(object_of(s3_env, bucket, key(n)) is None for n in "abc")


def test_rm_removes_an_entry_from_the_bucket_it_names(folder, bucket, s3_env, capsys):
    digest = key("c").digest
    code, out, _ = run(capsys, "rm", digest[:8], "--cache-dir", folder, "--remote", bucket)
    assert code == 0
    assert f"Removed {digest[:12]} from {bucket}." in out
    assert object_of(s3_env, bucket, key("c")) is None


@pytest.mark.usefixtures("s3_env")
def test_a_missing_bucket_is_one_error_line_and_exit_1(folder, capsys):
    url = "s3://no-such-bucket-here/prod"
    fill(folder, None, "ab")
    code, _, err = run(capsys, "ls", "--cache-dir", folder, "--remote", url)
    assert code == 1
    assert err.startswith(f"cached-tts: error: cannot use {url}:")
    assert "no-such-bucket-here" in err
    assert err.count("\n") == 1


def test_an_unknown_scheme_is_one_error_line(folder, capsys):
    code, _, err = run(capsys, "ls", "--cache-dir", folder, "--remote", "ftp://cache/x")
    assert code == 1
    assert "neither a Redis URL" in err


# -- warm ---------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_model")
def test_warm_fills_the_bucket_even_from_a_warm_folder(folder, voices, s3_url, capsys):
    assert run(capsys, "warm", voices, "--cache-dir", folder)[0] == 0  # no remote yet
    code, out, _ = run(capsys, "warm", voices, "--cache-dir", folder, "--remote", s3_url)
    assert code == 0
    assert "0 new, 2 already cached" in out
    assert f"shared: {s3_url}" in out
    stored = open_object_store(s3_url).scan()
    assert sorted(s.digest for s in stored) == sorted(
        f.path.stem for f in DiskStore(folder).files()
    )
    # A new machine with an empty folder is served from the bucket.
    code, out, _ = run(
        capsys, "warm", voices, "--cache-dir", folder.parent / "b", "--remote", s3_url
    )
    assert "0 new, 2 already cached" in out


@pytest.mark.usefixtures("s3_env")
def test_an_object_store_that_does_not_answer_is_one_error_line(folder, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    code, _, err = run(capsys, "stats", "--cache-dir", folder, "--remote", "s3://voices/prod")
    assert code == 1
    assert err.startswith("cached-tts: error: cannot use s3://voices/prod: ")
    assert err.count("\n") == 1
