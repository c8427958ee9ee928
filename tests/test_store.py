"""The disk tier: private, atomic, verified, bounded."""

from __future__ import annotations

import logging
import os
import stat
import sys
import time

import pytest
import torch
from forking import in_forked_child
from strategies import voice_entry

from cached_tts import ConditionalCache
from cached_tts._atomic import TEMP_PREFIX
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import TierSettings
from cached_tts._tiers.disk.store import DiskStore


def key_for(n):
    return EntryKey(content=f"{n:064x}", weights="w", settings=(("device", "cpu"),))


def entry_for(n):
    return voice_entry(float(n), vc=True, prepare_seconds=1.25)


def set_last_use(path, seconds):
    os.utime(path, (seconds, seconds))


def mode_of(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path):
    store = DiskStore(tmp_path / "cache")
    store.prepare()
    return store


def test_a_written_entry_reads_back(store):
    store.write(key_for(1), entry_for(1), source="voice.wav", created=100.0)
    entry, info = store.read(key_for(1))
    assert torch.equal(entry.tensors["ref.embedding"], entry_for(1).tensors["ref.embedding"])
    assert torch.equal(entry.tensors["ref.prompt_token"], entry_for(1).tensors["ref.prompt_token"])
    assert entry.absent == ("ref.prompt_feat_len",)
    assert (info.key, info.source, info.created, info.prepare_seconds) == (
        key_for(1),
        "voice.wav",
        100.0,
        1.25,
    )


def test_an_absent_entry_reads_as_none(store):
    assert store.read(key_for(1)) is None


def test_folders_are_private_and_files_owner_only(tmp_path):
    store = DiskStore(tmp_path / "deep" / "cache")
    store.prepare()
    store.write(key_for(1), entry_for(1), source="")
    for folder in (store.directory, store.entries_dir, store.locks_dir, store.hashes_dir):
        assert mode_of(folder) == 0o700, folder
    assert mode_of(store.path_for(key_for(1))) == 0o600


def test_an_existing_folder_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    DiskStore(shared).prepare()
    assert mode_of(shared) == 0o755


def test_a_write_leaves_no_temporary_files(store):
    for n in range(3):
        store.write(key_for(n), entry_for(n), source="")
    names = sorted(p.name for p in store.entries_dir.iterdir())
    assert names == sorted(f"{key_for(n).digest}.safetensors" for n in range(3))


def test_a_failed_write_leaves_neither_the_entry_nor_a_temporary_file(store, monkeypatch):
    def fail(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("cached_tts._atomic.os.replace", fail)
    with pytest.raises(OSError, match="No space"):
        store.write(key_for(1), entry_for(1), source="")
    monkeypatch.undo()
    assert list(store.entries_dir.iterdir()) == []
    assert store.read(key_for(1)) is None


def test_a_rewrite_replaces_the_entry_whole(store):
    store.write(key_for(1), entry_for(1), source="first.wav")
    store.write(key_for(1), entry_for(7), source="second.wav")
    entry, info = store.read(key_for(1))
    assert info.source == "second.wav"
    assert torch.equal(entry.tensors["ref.embedding"], entry_for(7).tensors["ref.embedding"])


def truncate(path, _store):
    path.write_bytes(path.read_bytes()[:-10])


def garble(path, _store):
    path.write_bytes(os.urandom(path.stat().st_size))


def empty(path, _store):
    path.write_bytes(b"")


def flip_one_bit(path, _store):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def copy_another_keys_entry(path, store):
    store.write(key_for(2), entry_for(2), source="other.wav")
    path.write_bytes(store.path_for(key_for(2)).read_bytes())


def nest_deeply(path, _store):
    header = b"[" * 100_000 + b"]" * 100_000
    path.write_bytes(len(header).to_bytes(8, "little") + header)


@pytest.mark.parametrize(
    "damage",
    [truncate, garble, empty, flip_one_bit, copy_another_keys_entry, nest_deeply],
)
def test_a_damaged_entry_is_logged_removed_and_read_as_absent(store, damage, caplog):
    store.write(key_for(1), entry_for(1), source="voice.wav")
    path = store.path_for(key_for(1))
    damage(path, store)

    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert store.read(key_for(1)) is None

    warnings = [r for r in caplog.records if r.name == "cached_tts"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert str(path) in warnings[0].getMessage()
    assert not path.exists()
    assert store.read(key_for(1)) is None


def test_a_damaged_entry_does_not_disturb_others(store):
    store.write(key_for(1), entry_for(1), source="")
    store.write(key_for(2), entry_for(2), source="")
    store.path_for(key_for(1)).write_bytes(b"garbage")
    assert store.read(key_for(1)) is None
    assert store.read(key_for(2)) is not None


def test_eviction_removes_the_least_recently_used_first(store):
    for n in range(4):
        store.write(key_for(n), entry_for(n), source="")
    for n, seconds in enumerate((3000, 1000, 4000, 2000)):
        set_last_use(store.path_for(key_for(n)), seconds)
    sizes = {n: store.path_for(key_for(n)).stat().st_size for n in range(4)}

    assert store.evict(sizes[0] + sizes[2]) == 2

    assert not store.path_for(key_for(1)).exists()
    assert not store.path_for(key_for(3)).exists()
    assert store.read(key_for(0)) is not None
    assert store.read(key_for(2)) is not None


def test_eviction_stops_as_soon_as_the_rest_fits(store):
    for n in range(3):
        store.write(key_for(n), entry_for(n), source="")
        set_last_use(store.path_for(key_for(n)), 1000 + n)
    total = sum(f.size for f in store.files())
    assert store.evict(total) == 0
    assert store.evict(total - 1) == 1
    assert [f.path for f in store.files()] == [store.path_for(key_for(n)) for n in (1, 2)]


def test_a_read_refreshes_last_use(store):
    for n in range(3):
        store.write(key_for(n), entry_for(n), source="")
        set_last_use(store.path_for(key_for(n)), 1000 + n)

    assert store.read(key_for(0)) is not None  # the oldest, now the newest
    assert store.files()[-1].path == store.path_for(key_for(0))
    assert store.evict(sum(f.size for f in store.files()) - 1) == 1
    assert not store.path_for(key_for(1)).exists()
    assert store.path_for(key_for(0)).exists()


def test_writing_past_the_budget_evicts_the_least_recently_used(tmp_path):
    store = DiskStore(tmp_path / "cache")
    store.write(key_for(1), entry_for(1), source="", created=0.0)
    store.write(key_for(2), entry_for(2), source="", created=0.0)
    set_last_use(store.path_for(key_for(1)), 1000)
    set_last_use(store.path_for(key_for(2)), 2000)
    store.max_bytes = sum(f.size for f in store.files())

    store.write(key_for(3), entry_for(3), source="", created=0.0)

    assert sum(f.size for f in store.files()) <= store.max_bytes
    assert not store.path_for(key_for(1)).exists()
    assert store.path_for(key_for(2)).exists()
    assert store.path_for(key_for(3)).exists()


def test_eviction_reaps_temporary_files_of_dead_writers_only(store):
    dead = store.entries_dir / f"{TEMP_PREFIX}dead"
    live = store.entries_dir / f"{TEMP_PREFIX}live"
    dead.write_bytes(b"half an entry")
    live.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    set_last_use(dead, two_hours_ago)

    store.evict(1 << 30)

    assert not dead.exists()
    assert live.exists()


def test_temporary_files_are_not_listed_as_entries(store):
    store.write(key_for(1), entry_for(1), source="")
    (store.entries_dir / f"{TEMP_PREFIX}x.safetensors").write_bytes(b"partial")
    assert [f.path for f in store.files()] == [store.path_for(key_for(1))]


def test_clear_removes_every_entry(store):
    for n in range(3):
        store.write(key_for(n), entry_for(n), source="")
    store.clear()
    assert store.files() == []
    assert all(store.read(key_for(n)) is None for n in range(3))


def test_files_lists_sizes_and_last_use_oldest_first(store):
    for n in range(3):
        store.write(key_for(n), entry_for(n), source="")
    for n, seconds in enumerate((2000, 3000, 1000)):
        set_last_use(store.path_for(key_for(n)), seconds)
    files = store.files()
    assert [f.path for f in files] == [store.path_for(key_for(n)) for n in (2, 0, 1)]
    assert [f.last_used for f in files] == [1000, 2000, 3000]
    assert [f.size for f in files] == [f.path.stat().st_size for f in files]


def test_a_store_whose_folder_is_a_file_cannot_be_prepared(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):  # noqa: PT011 -- which OSError depends on the platform
        DiskStore(blocker / "cache").prepare()


def test_an_entry_cut_short_after_its_size_was_read_is_damage(store, monkeypatch):
    """The read fills a buffer of the size fstat gave: a file cut meanwhile gives fewer bytes."""
    store.write(key_for(1), entry_for(1), source="a.wav")
    path = store.path_for(key_for(1))
    real_fstat = os.fstat

    def fstat_then_cut(fd):
        st = real_fstat(fd)
        os.truncate(path, st.st_size // 2)
        return st

    monkeypatch.setattr(os, "fstat", fstat_then_cut)
    assert store.read(key_for(1)) is None
    monkeypatch.undo()
    assert not path.exists()  # removed as damaged
    store.write(key_for(1), entry_for(1), source="a.wav")
    assert store.read(key_for(1)) is not None


def test_a_new_processs_first_remembered_hash_evicts_only_from_a_folder_over_budget(tmp_path):
    """noted() with no tally yet: the folder's size decides, as an eviction pass would."""
    writer = DiskStore(tmp_path / "cache")
    writer.prepare()
    for n in range(3):
        writer.write(key_for(n), entry_for(n), source="")
        set_last_use(writer.path_for(key_for(n)), 1000 + n)
    (writer.hashes_dir / "remembered.json").write_bytes(b"x" * 100)
    total = sum(f.size for f in writer.files()) + 100

    within = DiskStore(tmp_path / "cache", max_bytes=total)
    within.noted(100)
    assert [f.path for f in within.files()] == [writer.path_for(key_for(n)) for n in range(3)]

    over = DiskStore(tmp_path / "cache", max_bytes=total - 1)
    over.noted(100)
    assert [f.path for f in over.files()] == [writer.path_for(key_for(n)) for n in (1, 2)]
    assert (writer.hashes_dir / "remembered.json").exists()  # hashes keep their share


# -- every read is bounded ---------------------------------------------------------

EIGHT_GIB = 8 * 1024**3


def with_little_memory(function):
    """``function()`` in a forked child that may map at most 2 GiB more than it has.

    There a read that allocates a file's 8 GiB raises ``MemoryError``, as on a
    worker with less memory, rather than take the test machine's.
    """
    import resource

    def limited():
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (mapped + 2 * 1024**3, hard))
        function()

    return in_forked_child(limited, timeout=120.0)


@pytest.mark.skipif(sys.platform != "linux", reason="the child's memory limit is read in /proc")
def test_a_sparse_entry_file_of_8_gib_is_damage_not_a_memory_error(tmp_path, caplog):
    folder = tmp_path / "cache"
    ConditionalCache(folder, remote=None).get_or_prepare(key_for(1), lambda: entry_for(1))
    (path,) = (folder / "entries").glob("*.safetensors")
    os.truncate(path, EIGHT_GIB)  # holes: no disk used, 8 GiB to whoever reads it whole

    def look_up():
        prepared = []
        cache = ConditionalCache(folder, remote=None)
        with caplog.at_level(logging.WARNING, logger="cached_tts"):
            entry = cache.get_or_prepare(key_for(1), lambda: prepared.append(1) or entry_for(1))
        assert entry.tensors
        assert prepared == [1]  # a miss: recomputed
        assert "over max_value_bytes" in caplog.text
        assert path.stat().st_size < 1024**2  # removed like other damage, and written anew

    assert with_little_memory(look_up) == "ok"


@pytest.mark.skipif(sys.platform != "linux", reason="the child's memory limit is read in /proc")
def test_listing_a_sparse_entry_file_of_8_gib_reports_it_damaged(store):
    store.write(key_for(1), entry_for(1), source="voice.wav")
    store.write(key_for(2), entry_for(2), source="voice.wav")
    os.truncate(store.path_for(key_for(1)), EIGHT_GIB)

    def scan():
        damage = {found.file.path: found.damage for found in store.scan()}
        assert "over max_value_bytes" in damage[store.path_for(key_for(1))]
        assert damage[store.path_for(key_for(2))] is None

    assert with_little_memory(scan) == "ok"


def test_an_entry_file_over_the_bound_is_damage_and_is_not_written(tmp_path, caplog):
    small = DiskStore(tmp_path / "cache", max_entry_bytes=512)
    small.prepare()
    small.write(key_for(1), entry_for(1), source="voice.wav")  # about 1 KB: not stored
    assert small.files() == []
    roomy = DiskStore(tmp_path / "cache")
    roomy.write(key_for(1), entry_for(1), source="voice.wav")
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert small.read(key_for(1)) is None
    assert "over max_value_bytes (512 bytes)" in caplog.text
    assert small.files() == []  # removed like other damage


def test_a_caches_folder_takes_the_shared_bound_only_where_it_is_larger(tmp_path):
    """A small shared bound (sparing Redis's memory) still keeps entries on disk."""
    folder = tmp_path / "cache"
    small = ConditionalCache(folder, remote=None, remote_settings=TierSettings(max_value_bytes=512))
    small.get_or_prepare(key_for(1), lambda: entry_for(1))  # about 1 KB
    assert small.stats().disk_entries == 1
    assert small._store.max_entry_bytes == TierSettings().max_value_bytes
    roomy = TierSettings(max_value_bytes=4 * TierSettings().max_value_bytes)
    large = ConditionalCache(folder, remote=None, remote_settings=roomy)
    assert large._store.max_entry_bytes == roomy.max_value_bytes
