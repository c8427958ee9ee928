"""Fixtures shared by every test folder: a real Redis server on loopback."""

from __future__ import annotations

import pytest
from redis_server import REDIS_SERVER, RedisServer, SilentServer, flush


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
