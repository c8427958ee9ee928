"""Fixtures shared by every test folder: a real Redis server on loopback, a clock ahead."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, settings
from redis_server import REDIS_SERVER, RedisServer, SilentServer, flush

from cached_tts._keys import hashing as _hashing

# -- Hypothesis: reproducible in CI, exploring locally ---------------------------
# A CI run ($CI set, as every CI service sets it) draws the same examples on
# every run, derived from each test's source, with each test's usual example
# count: a clean clone's `make test` passes or fails the same way each time. A
# local run keeps Hypothesis's default: new random examples each run, and the
# example database replays a failure found before. $HYPOTHESIS_PROFILE picks a
# profile by name (HYPOTHESIS_PROFILE=ci replays CI's examples locally). The
# profile is ours, not left to Hypothesis's own CI detection, so that it is the
# same on every Hypothesis version pyproject.toml allows.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
_profile = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else None)
if _profile:
    settings.load_profile(_profile)


# -- pytest-xdist: workers share the cores ----------------------------------------
def pytest_configure(config):  # noqa: ARG001 -- pytest's hook signature
    """Under pytest-xdist, each worker's torch gets its share of the cores, not all of them.

    ``make test`` runs two workers on two cores; torch's default of one thread per
    core would put four busy threads on them: four integration files took 191 s so,
    125 s with one thread per worker (measured on the project's 2-core machine). The
    processes that tests start inherit ``OMP_NUM_THREADS``: they run with the
    same thread count as the worker, which matters beyond speed, because the bits
    a preparation computes depend on it, and tests compare a child's results
    bitwise with the worker's.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 1:
        import torch

        # A count set by hand (OMP_NUM_THREADS=2 make test) wins over the share.
        share = str(max(1, (os.cpu_count() or 1) // workers))
        threads = int(os.environ.setdefault("OMP_NUM_THREADS", share))  # for the worker's life
        torch.set_num_threads(threads)


def started_server():
    """A real redis-server on a free loopback port; skips the test when there is none."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return RedisServer().start()


@pytest.fixture(scope="session")
def redis_session():
    server = started_server()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_session):
    """The session's server, emptied before each test."""
    flush(redis_session.url)
    return redis_session.url


@pytest.fixture
def own_redis():
    """A server of this test's own, which it may kill and restart."""
    server = started_server()
    yield server
    server.stop()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


# -- a real S3 API on loopback (moto), for the object-store tier ----------------


@pytest.fixture(scope="session")
def s3_session():
    from s3_server import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_session, monkeypatch, tmp_path):
    """The environment of a deployment that reaches the session's S3 server."""
    from s3_server import DUMMY_KEYS, REGION

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # No user's ~/.aws files: only what the test sets.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_session.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name, value in DUMMY_KEYS.items():
        monkeypatch.setenv(name, value)
    return s3_session


@pytest.fixture
def s3_url(s3_env):
    """``s3://<a new bucket>/prod`` on the session's server."""
    return f"s3://{s3_env.new_bucket()}/prod"


@pytest.fixture
def own_s3(s3_env, monkeypatch):  # noqa: ARG001 -- s3_env's environment, then this endpoint
    """A server of this test's own, which it may stop and restart; the environment points at it."""
    from s3_server import S3Server

    server = S3Server().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    yield server
    server.stop()


@pytest.fixture
def clock_ahead(monkeypatch):
    """Hash as if 10 s from now: files a test just wrote, ctime included, are then old.

    A file's ctime cannot be set back, so without this every file a test writes
    is racy and its hash is never remembered.
    """
    real_time_ns = time.time_ns
    monkeypatch.setattr(
        _hashing, "time", SimpleNamespace(time_ns=lambda: real_time_ns() + 10_000_000_000)
    )
