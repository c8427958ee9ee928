"""The object-store tier on memory:// and file://: verified, written once, never a failure."""

from __future__ import annotations

import functools
import logging
import stat
import sys
import threading
import uuid

import fsspec
import pytest
from strategies import voice_entry
from test_format import assert_same_entry

from cached_tts._entries.format import decode, encode
from cached_tts._forksafe import renew_all
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.base import TierSettings
from cached_tts._tiers.health import Backoff
from cached_tts._tiers.objectstore.opening import is_object_store_url, open_object_store
from cached_tts._tiers.open_once import OpenOnce

KEY = EntryKey(content="c" * 64, weights="w", settings=(("device", "cpu"),))
OTHER_KEY = EntryKey(content="d" * 64, weights="w", settings=(("device", "cpu"),))


def voice(seed=0):
    """A whole voice (as the entry format demands), its values named by ``seed``."""
    return voice_entry(float(seed + 1), floats=256, prepare_seconds=1.25)


@functools.cache
def encoded(key=KEY, seed=0, created=1.0):
    # Remembered: safetensors writes its metadata in no fixed order, so two
    # encodings of one entry may differ in bytes.
    return encode(key, voice(seed), source="voice.wav", created=created)


@pytest.fixture(params=["memory", "file"])
def url(request, tmp_path):
    if request.param == "memory":
        return f"memory://cached-tts-tests/{uuid.uuid4().hex}/prod"
    return f"file://{tmp_path}/bucket/prod"


def object_path(tier, key):
    return tier._path(key.digest)


def store_raw(tier, key, data, path=None):
    """Bytes put in place behind the tier's back, as by a faulty writer or a bad disk."""
    fs = tier._filesystem()
    fs.makedirs(tier._root, exist_ok=True)
    fs.pipe_file(path or object_path(tier, key), data)


def stored(tier, key):
    fs = tier._filesystem()
    path = object_path(tier, key)
    return fs.cat_file(path) if fs.exists(path) else None


# -- sharing ----------------------------------------------------------------


def test_an_entry_put_by_one_machine_is_served_verified_to_another(url):
    data = encoded()
    open_object_store(url).put(KEY, data)
    other_machine = open_object_store(url)
    entry, served = other_machine.get(KEY)
    assert served == data
    assert_same_entry(entry, decode(data, KEY)[0])
    assert other_machine.stats().hits == 1


def test_an_absent_entry_is_a_quiet_miss(url, caplog):
    tier = open_object_store(url)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
    assert caplog.records == []
    assert tier.stats().errors == 0


def test_objects_are_named_by_key_digest_under_the_prefix(tmp_path):
    tier = open_object_store(f"file://{tmp_path}/bucket/prod")
    tier.put(KEY, encoded())
    written = tmp_path / "bucket" / "prod" / f"{KEY.digest}.safetensors"
    assert written.read_bytes() == encoded()
    # Readable by the fleet's other users; the folder decides who gets in.
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    # Only the object itself: the temporary file it was written through is gone.
    assert [p.name for p in (tmp_path / "bucket" / "prod").iterdir()] == [
        f"{KEY.digest}.safetensors"
    ]


# -- written once -------------------------------------------------------------


def test_a_second_writer_loses_quietly_and_the_first_object_stays(url, caplog):
    first, second = open_object_store(url), open_object_store(url)
    first.put(KEY, encoded(created=1.0))
    with caplog.at_level(logging.DEBUG, logger="cached_tts"):
        second.put(KEY, encoded(created=2.0))
    assert stored(second, KEY) == encoded(created=1.0)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert second.stats().errors == 0
    assert not second.read_only


def test_a_file_writer_that_loses_the_race_after_writing_leaves_no_trace(tmp_path, monkeypatch):
    """The link into place is the conditional create: forced to lose, the put is a success."""
    tier = open_object_store(f"file://{tmp_path}/bucket/prod")
    import os as real_os

    real_link = real_os.link

    def another_writer_first(src, dst):
        (tmp_path / "bucket" / "prod" / f"{KEY.digest}.safetensors").write_bytes(b"theirs")
        real_link(src, dst)

    monkeypatch.setattr("cached_tts._tiers.objectstore.calls.os.link", another_writer_first)
    tier.put(KEY, encoded())
    assert stored(tier, KEY) == b"theirs"
    assert sorted(p.name for p in (tmp_path / "bucket" / "prod").iterdir()) == [
        f"{KEY.digest}.safetensors"
    ]
    assert tier.stats().errors == 0


# -- verified on every read -------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: encoded()[:-10], id="truncated"),
        pytest.param(lambda: bytes([encoded()[0] ^ 1]) + encoded()[1:], id="flipped-bit"),
        pytest.param(lambda: encoded(key=OTHER_KEY), id="other-key"),
    ],
)
def test_a_damaged_or_misplaced_object_is_not_served_and_is_deleted(url, bad, caplog):
    tier = open_object_store(url)
    store_raw(tier, KEY, bad())
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
    assert stored(tier, KEY) is None
    assert "Removing damaged entry" in caplog.text
    # The next preparation's put takes its place.
    tier.put(KEY, encoded())
    assert tier.get(KEY)[1] == encoded()


def test_a_read_only_tier_never_serves_a_damaged_object_and_leaves_it(url):
    store_raw(open_object_store(url), KEY, encoded(key=OTHER_KEY))
    reader = open_object_store(url, read_only=True)
    assert reader.get(KEY) is None
    assert stored(reader, KEY) == encoded(key=OTHER_KEY)


def test_a_read_only_tier_never_writes(url):
    reader = open_object_store(url, read_only=True)
    reader.put(KEY, encoded())
    assert stored(reader, KEY) is None


# -- bounded reads: an object someone made huge ---------------------------------------

# Room for one test entry (about 2.4 KB), far less than the objects made too large.
LIMIT = 4096


def limited(**kwargs):
    return TierSettings(max_value_bytes=LIMIT, **kwargs)


def oversized():
    """A whole entry padded far past the limit, as a hostile writer might leave it."""
    return encoded() + b"\0" * (20 * LIMIT)


def spy_on_reads(tier, monkeypatch):
    """The length of every ``cat_file`` answer the tier's filesystem gives."""
    fs = tier._filesystem()
    real = fs.cat_file
    lengths = []

    def cat_file(*args, **kwargs):
        data = real(*args, **kwargs)
        lengths.append(len(data))
        return data

    monkeypatch.setattr(fs, "cat_file", cat_file)
    return lengths


def test_an_object_over_the_size_limit_is_read_no_further_and_removed_as_damage(
    url, caplog, monkeypatch
):
    tier = open_object_store(url, limited())
    store_raw(tier, KEY, oversized())
    lengths = spy_on_reads(tier, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
    assert lengths == [LIMIT + 1]
    assert "over max_value_bytes (4096 bytes)" in caplog.text
    assert stored(tier, KEY) is None
    # Damage, not an outage: no error, no back-off, and the good entry takes its place.
    assert (tier.stats().errors, tier.available()) == (0, True)
    tier.put(KEY, encoded())
    assert tier.get(KEY)[1] == encoded()


def test_a_read_only_tier_leaves_an_oversized_object_and_reads_no_further_each_time(
    url, monkeypatch
):
    store_raw(open_object_store(url), KEY, oversized())
    reader = open_object_store(url, limited(), read_only=True)
    lengths = spy_on_reads(reader, monkeypatch)
    assert reader.get(KEY) is None
    assert reader.get(KEY) is None
    assert lengths == [LIMIT + 1, LIMIT + 1]
    assert stored(reader, KEY) == oversized()
    assert reader.stats().errors == 0


def test_an_entry_over_the_size_limit_is_not_written(url):
    tier = open_object_store(url, TierSettings(max_value_bytes=len(encoded()) - 1))
    tier.put(KEY, encoded())
    assert stored(tier, KEY) is None
    assert tier.stats().errors == 0


def test_housekeeping_reads_an_oversized_object_no_further_and_deletes_it(url, monkeypatch):
    tier = open_object_store(url, limited())
    store_raw(tier, KEY, oversized())
    lengths = spy_on_reads(tier, monkeypatch)
    start = tier.read(KEY.digest)
    assert start == oversized()[: LIMIT + 1]
    assert lengths == [LIMIT + 1]
    assert tier.delete(KEY.digest, start)
    assert stored(tier, KEY) is None
    # What a read that stopped early stands for is never a good entry written since.
    tier.put(KEY, encoded())
    assert not tier.delete(KEY.digest, start)
    assert stored(tier, KEY) == encoded()


# -- a folder on a hung mount -------------------------------------------------------


def hung_mount(tmp_path):
    """A file:// tier with short deadlines and a long back-off, and an event that ends the hang."""
    url = f"file://{tmp_path}/bucket/prod"
    settings = TierSettings(connect_timeout=0.05, read_timeout=0.1, backoff=Backoff(initial=60.0))
    return open_object_store(url, settings), threading.Event()


def returns_while_hung(call):
    """Run ``call`` in a thread; whether it returned (a hang is given 30 s to show)."""
    results = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    thread.join(timeout=30)
    return results


def test_a_read_from_a_hung_mount_costs_a_lookup_its_deadline_then_a_back_off(
    tmp_path, monkeypatch, caplog
):
    tier, mount_answers = hung_mount(tmp_path)
    fs = tier._filesystem()
    real = fs.cat_file

    def hung_read(*args, **kwargs):  # an NFS read whose server is gone
        mount_answers.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(fs, "cat_file", hung_read)
    try:
        with caplog.at_level(logging.WARNING, logger="cached_tts"):
            assert returns_while_hung(lambda: tier.get(KEY)) == [None]
        assert not mount_answers.is_set()  # it returned while the read still hangs
        assert (tier.stats().errors, tier.available()) == (1, False)
        assert "no answer within" in caplog.text
    finally:
        mount_answers.set()


def test_a_write_to_a_hung_mount_costs_a_put_its_deadline_then_a_back_off(tmp_path, monkeypatch):
    tier, mount_answers = hung_mount(tmp_path)

    def hung_write(*_args):
        mount_answers.wait()

    monkeypatch.setattr("cached_tts._tiers.objectstore.tier.link_new_file", hung_write)
    try:
        assert returns_while_hung(lambda: tier.put(OTHER_KEY, encoded(key=OTHER_KEY))) == [None]
        assert not mount_answers.is_set()
        assert (tier.stats().errors, tier.available()) == (1, False)
    finally:
        mount_answers.set()


# -- refused writes and failing stores (a test double of the store) ---------------


class Refusing:
    """Wraps a filesystem: writes and deletes raise PermissionError, as with read-only keys."""

    def __init__(self, fs):
        self._fs = fs

    def __getattr__(self, name):
        if name in ("pipe_file", "rm_file", "rm"):

            def refuse(*_args, **_kwargs):
                raise PermissionError("Access Denied")

            return refuse
        return getattr(self._fs, name)


class Failing:
    """A store that does not answer: every call raises, and is counted."""

    async_impl = False

    def __init__(self):
        self.calls = 0

    def __getattr__(self, name):
        def fail(*_args, **_kwargs):
            self.calls += 1
            raise TimeoutError("the store did not answer")

        return fail


def open_with(tier, open_filesystem):
    """Make ``tier`` open its filesystem with ``open_filesystem`` from now on."""
    tier._open_filesystem = open_filesystem
    tier._client = OpenOnce(tier._open, timeout=tier.settings.open_timeout)


def refuse_writes(tier, monkeypatch):
    real = tier._filesystem()
    open_with(tier, lambda: Refusing(real))

    def unwritable_folder(*_args, **_kwargs):
        raise PermissionError("Permission denied")

    # file:// writes through the os module (root may write anywhere, so no chmod).
    monkeypatch.setattr("cached_tts._tiers.objectstore.calls.tempfile.mkstemp", unwritable_folder)


def test_a_refused_write_warns_once_and_the_tier_goes_on_reading(url, caplog, monkeypatch):
    writer = open_object_store(url)
    writer.put(OTHER_KEY, encoded(key=OTHER_KEY))
    tier = open_object_store(url)
    refuse_writes(tier, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        tier.put(KEY, encoded())
        tier.put(KEY, encoded())
    refusals = [r for r in caplog.records if "refused to write" in r.getMessage()]
    assert len(refusals) == 1
    assert tier.read_only
    assert tier.stats().errors == 0
    assert tier.get(OTHER_KEY)[1] == encoded(key=OTHER_KEY)


def test_a_refused_delete_of_a_damaged_object_makes_the_tier_read_only(url, caplog, monkeypatch):
    tier = open_object_store(url)
    store_raw(tier, KEY, b"garbage")
    refuse_writes(tier, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
    assert tier.read_only
    assert "refused to delete" in caplog.text
    assert tier.stats().errors == 0


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_failing_store_is_skipped_during_the_back_off_then_retried(url, monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr("cached_tts._tiers.health._now", clock)
    settings = TierSettings(backoff=Backoff(initial=5.0, maximum=60.0))
    tier = open_object_store(url, settings)
    failing = Failing()
    open_with(tier, lambda: failing)
    with caplog.at_level(logging.WARNING, logger="cached_tts"):
        assert tier.get(KEY) is None
        tier.put(KEY, encoded())
        assert tier.get(KEY) is None
    # One call reached the store; the others were skipped during the back-off.
    assert failing.calls == 1
    assert tier.stats().errors == 1
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1

    clock.now += 5.0
    assert tier.get(KEY) is None  # retried, failed again: now 10 s
    assert failing.calls == 2
    clock.now += 9.0
    assert tier.get(KEY) is None
    assert failing.calls == 2

    # The store answers again: the tier is back in use.
    real = open_object_store(url)
    real.put(KEY, encoded())
    open_with(tier, real._open_filesystem)
    clock.now += 1.0
    with caplog.at_level(logging.INFO, logger="cached_tts"):
        assert tier.get(KEY)[1] == encoded()
    assert "is back in use" in caplog.text


def test_a_forked_worker_opens_its_own_filesystem():
    tier = open_object_store(f"memory://cached-tts-tests/{uuid.uuid4().hex}")
    first = tier._filesystem()
    assert tier._filesystem() is first
    renew_all()  # what a forked child runs first
    assert tier._filesystem() is not first


# -- housekeeping ----------------------------------------------------------------


def test_scan_lists_entries_with_sizes_and_times_and_nothing_else(url):
    tier = open_object_store(url)
    assert list(tier.scan()) == []  # an empty or absent prefix
    tier.put(KEY, encoded())
    tier.put(OTHER_KEY, encoded(key=OTHER_KEY, seed=1))
    store_raw(tier, None, b"not an entry", path=f"{tier._root}/notes.txt")
    listed = sorted(tier.scan(), key=lambda found: found.digest)
    expected = sorted(
        [(KEY.digest, len(encoded())), (OTHER_KEY.digest, len(encoded(key=OTHER_KEY, seed=1)))]
    )
    assert [(found.digest, found.size) for found in listed] == expected
    assert all(found.modified is not None and found.modified > 0 for found in listed)


def test_delete_removes_an_object_only_while_it_holds_the_given_bytes(url):
    tier = open_object_store(url)
    tier.put(KEY, encoded())
    assert tier.delete(KEY.digest, b"other bytes") is False
    assert tier.read(KEY.digest) == encoded()
    assert tier.delete(KEY.digest, encoded()) is True
    assert tier.read(KEY.digest) is None
    assert tier.delete(KEY.digest, encoded()) is False


def test_delete_all_removes_every_entry_under_the_prefix(url):
    tier = open_object_store(url)
    tier.put(KEY, encoded())
    tier.put(OTHER_KEY, encoded(key=OTHER_KEY))
    assert tier.delete_all() == 2
    assert list(tier.scan()) == []
    tier.ping()


# -- opening ---------------------------------------------------------------------


def test_only_object_store_urls_are_taken():
    assert is_object_store_url("S3://voices/prod")
    assert is_object_store_url("abfs://container/prefix")
    assert not is_object_store_url("rediss://cache:6380/0")
    assert not is_object_store_url("voices/prod")
    with pytest.raises(ValueError, match="not an object-store URL"):
        open_object_store("redis://user:secret@cache:6379/0")
    with pytest.raises(ValueError, match=r"user:\*\*\*@"):
        open_object_store("redis://user:secret@cache:6379/0")


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("s3://voices/prod", "s3fs", "s3"),
        ("gs://voices/prod", "gcsfs", "gcs"),
        ("az://voices/prod", "adlfs", "azure"),
        ("abfs://voices/prod", "adlfs", "azure"),
    ],
)
def test_a_missing_protocol_package_names_the_extra_to_install(monkeypatch, url, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    for protocol in ("s3", "s3a", "gs", "gcs", "az", "abfs"):
        monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, protocol, raising=False)
    with pytest.raises(ImportError, match=rf"pip install 'cached-tts\[{extra}\]'"):
        open_object_store(url)


@pytest.fixture
def aws_keys(monkeypatch, tmp_path):
    """Keys in the environment: building an S3 client looks up nothing on the network."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.mark.usefixtures("aws_keys")
def test_s3_calls_have_the_settings_timeouts_and_no_retries_unless_options_say_otherwise():
    settings = TierSettings(connect_timeout=0.25, read_timeout=0.75)
    fs = open_object_store("s3://voices/prod", settings)._filesystem()
    assert fs.config_kwargs["connect_timeout"] == 0.25
    assert fs.config_kwargs["read_timeout"] == 0.75
    assert fs.config_kwargs["retries"]["total_max_attempts"] == 1
    assert fs.retries == 1
    tuned = open_object_store(
        "s3://voices/prod",
        settings,
        options={"config_kwargs": {"read_timeout": 5.0}, "anon": True},
    )._filesystem()
    assert tuned.config_kwargs["read_timeout"] == 5.0
    assert tuned.config_kwargs["connect_timeout"] == 0.25
    assert tuned.anon is True


@pytest.mark.usefixtures("aws_keys")
def test_fsspec_configuration_reaches_the_store(monkeypatch):
    monkeypatch.setitem(
        fsspec.config.conf, "s3", {"anon": True, "config_kwargs": {"connect_timeout": 3.0}}
    )
    fs = open_object_store("s3://voices/prod")._filesystem()
    assert fs.anon is True
    assert fs.config_kwargs["connect_timeout"] == 3.0
    assert fs.config_kwargs["retries"]["total_max_attempts"] == 1


@pytest.mark.usefixtures("aws_keys")
def test_the_tier_does_not_share_fsspecs_cached_instances():
    shared = fsspec.filesystem("s3")
    assert open_object_store("s3://voices/prod")._filesystem() is not shared
