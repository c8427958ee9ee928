"""What ``warm`` remembers to look voices up before it loads a model."""

import os
import pathlib

import pytest

from cached_tts._cli import loading as _loading
from cached_tts._cli import profiles as _profiles
from cached_tts._cli.profiles import ModelProfile, identity
from cached_tts._keys import versions as _versions
from cached_tts._keys.hashing import FileHasher

SETTINGS = (("device", "cpu"), ("method", "chatterbox.tts.ChatterboxTTS.prepare_conditionals"))


LOCAL_REVISION = "a" * 40


@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
    """A local snapshot the loader would use, with one preparation weight file; offline."""
    folder = tmp_path / "snapshots" / LOCAL_REVISION
    folder.mkdir(parents=True)
    (folder / "ve.safetensors").write_bytes(b"voice encoder weights")
    monkeypatch.setattr(_profiles, "_local_checkpoint", lambda _kind: str(folder))
    monkeypatch.setattr(_loading, "hub_reachable", lambda: False)
    return folder


def test_a_profile_round_trips_and_belongs_to_its_identity_only(tmp_path):
    ident = identity("english", "cpu", random_weights=True, hasher=FileHasher())
    profile = ModelProfile("weights:abc", SETTINGS)
    profile.save(tmp_path, ident)

    assert ModelProfile.load(tmp_path, ident) == profile
    assert ModelProfile.load(tmp_path, {**ident, "device": "cuda"}) is None
    assert profile.key("c" * 64) == ModelProfile.load(tmp_path, ident).key("c" * 64)


def test_a_damaged_profile_is_ignored_so_the_model_is_loaded(tmp_path):
    ident = identity("english", "cpu", random_weights=True, hasher=FileHasher())
    ModelProfile("weights:abc", SETTINGS).save(tmp_path, ident)
    (path,) = (tmp_path / "models").iterdir()
    path.write_text("{not json")

    assert ModelProfile.load(tmp_path, ident) is None


class BoundedReads:
    """Files whose reads fail the test when asked for more than ``limit`` bytes (or all)."""

    def __init__(self, opener, limit):
        self.opener = opener
        self.limit = limit
        self.sizes = []

    def __call__(self, *args, **kwargs):
        f = self.opener(*args, **kwargs)
        read = f.read

        def bounded_read(size=-1, /):
            self.sizes.append(size)
            assert 0 <= size <= self.limit, f"a profile read of {size} bytes: unbounded"
            return read(size)

        f.read = bounded_read
        return f


def test_a_huge_sparse_profile_is_ignored_without_reading_it_whole(tmp_path, monkeypatch):
    ident = identity("english", "cpu", random_weights=True, hasher=FileHasher())
    ModelProfile("weights:abc", SETTINGS).save(tmp_path, ident)
    (path,) = (tmp_path / "models").iterdir()
    os.truncate(path, 1 << 40)  # a terabyte that takes no disk
    # Reading it whole would exhaust memory; fail at the asking instead.
    reads = BoundedReads(open, limit=1 << 20)
    monkeypatch.setattr("builtins.open", reads)
    # A lambda, unlike an instance, is bound as a method: Path.open gets the path as self.
    reads_path = lambda self, *a, **k: reads(self, *a, **k)  # noqa: E731, PLW0108
    monkeypatch.setattr(pathlib.Path, "open", reads_path)

    assert ModelProfile.load(tmp_path, ident) is None
    assert reads.sizes  # the profile was read, in a bounded read


def test_a_profile_over_the_bound_is_ignored(tmp_path):
    ident = identity("english", "cpu", random_weights=True, hasher=FileHasher())
    ModelProfile("weights:abc", SETTINGS).save(tmp_path, ident)
    (path,) = (tmp_path / "models").iterdir()
    with path.open("ab") as f:
        f.write(b" " * 64 * 1024)  # still valid JSON, but no profile is this large

    assert ModelProfile.load(tmp_path, ident) is None


def test_the_identity_names_kind_device_versions_and_the_random_seed():
    ident = identity("turbo", "cuda:1", random_weights=True, hasher=FileHasher())

    assert (ident["kind"], ident["device"], ident["weights"]) == ("turbo", "cuda", "random:0")
    assert {"cached-tts", "schema"} <= ident.keys()


def test_the_identity_names_every_version_the_key_names():
    ident = identity("english", "cpu", random_weights=True, hasher=FileHasher())

    # chatterbox (with its source digest for a fork), soxr, numpy, pyloudnorm...
    assert dict(_versions.library_versions()).items() <= ident.items()


def test_a_profile_remembered_under_other_versions_is_not_found(tmp_path, monkeypatch):
    ident = identity("english", "cpu", random_weights=True, hasher=FileHasher())
    ModelProfile("weights:abc", SETTINGS).save(tmp_path, ident)
    upgraded = tuple(
        (name, "99.0" if name == "version:soxr" else version)
        for name, version in _versions.library_versions()
    )
    monkeypatch.setattr(_versions, "library_versions", lambda: upgraded)

    now = identity("english", "cpu", random_weights=True, hasher=FileHasher())
    assert now["version:soxr"] == "99.0"
    assert ModelProfile.load(tmp_path, now) is None


@pytest.mark.usefixtures("checkpoint")
def test_offline_the_identity_names_the_local_snapshot_s_revision():
    ident = identity("english", "cpu", random_weights=False, hasher=FileHasher())

    assert ident["revision"] == LOCAL_REVISION


@pytest.mark.usefixtures("checkpoint")
@pytest.mark.parametrize(
    ("served", "predicted"),
    [
        (LOCAL_REVISION, True),
        ("b" * 40, False),  # from_pretrained would download and load this one
        (None, False),  # the Hub does not say
    ],
)
def test_online_the_identity_is_known_only_when_the_hub_serves_the_local_revision(
    monkeypatch, served, predicted
):
    monkeypatch.setattr(_loading, "hub_reachable", lambda: True)
    monkeypatch.setattr(_profiles, "_hub_revision", lambda _kind: served)

    ident = identity("english", "cpu", random_weights=False, hasher=FileHasher())

    assert (ident is not None) == predicted
    assert ident is None or ident["revision"] == LOCAL_REVISION


def test_other_checkpoint_files_make_another_identity(checkpoint):
    before = identity("english", "cpu", random_weights=False, hasher=FileHasher())
    (checkpoint / "ve.safetensors").write_bytes(b"fine-tuned voice encoder weights")
    after = identity("english", "cpu", random_weights=False, hasher=FileHasher())

    assert before["weights"].startswith("ckpt:")
    assert before != after  # a new checkpoint never reuses another's remembered key parts


def test_without_a_local_checkpoint_nothing_is_predicted(monkeypatch):
    monkeypatch.setattr(_profiles, "_local_checkpoint", lambda _kind: None)

    assert identity("english", "cpu", random_weights=False, hasher=FileHasher()) is None


def test_the_profile_looks_in_the_snapshot_the_loader_would_load(tmp_path, monkeypatch):
    import huggingface_hub

    asked = []

    def snapshot_download(repo, **kwargs):
        asked.append((repo, kwargs))
        if repo == _loading.REPOSITORIES["turbo"]:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not in the local cache")
        return tmp_path / repo

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)

    assert _profiles._local_checkpoint("english") == _loading.local_snapshot("english")
    assert _profiles._local_checkpoint("english") == str(tmp_path / "ResembleAI/chatterbox")
    assert _profiles._local_checkpoint("turbo") is None  # absent: load the model to know
    assert {kwargs["local_files_only"] for _, kwargs in asked} == {True}  # never the Hub
