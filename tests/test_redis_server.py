"""The suite's throwaway Redis servers stay apart when pytest-xdist runs workers side by side."""

from __future__ import annotations

import pytest
import redis
import redis_server
from redis_server import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


def test_a_port_another_worker_took_meanwhile_is_never_mistaken_for_ours(monkeypatch):
    other = RedisServer().start()  # the other worker's server, on the port ours was offered
    ports = iter([other.port])
    real_free_port = redis_server.free_port
    monkeypatch.setattr(redis_server, "free_port", lambda: next(ports, None) or real_free_port())
    ours = RedisServer()
    try:
        ours.start()
        assert ours.port != other.port, "started on the port the other server holds"
        redis.Redis.from_url(ours.url).set("mine", b"1")
        assert redis.Redis.from_url(other.url).get("mine") is None, "wrote to the other server"
    finally:
        ours.stop()
        other.stop()
