"""The Redis tier: entries shared by a fleet through one Redis server.

``tier`` is the tier (``RemoteTier``) and how it opens; ``settings`` its
settings and URLs (``RemoteSettings``, ``is_redis_url``, ``redacted``).
"""
