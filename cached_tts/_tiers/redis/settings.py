"""How a cache uses its Redis server, and the URLs that name shared tiers.

:class:`RemoteSettings` holds Redis's own settings beside every shared tier's;
:func:`redacted` hides a URL's password wherever a message names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from cached_tts._tiers.base import TierSettings
from cached_tts._tiers.checks import ttl_seconds

__all__ = ["RemoteSettings", "is_redis_url", "redacted"]


def redacted(url: str) -> str:
    """A Redis URL with its password hidden, for messages.

    >>> redacted("rediss://tts:s3cret@redis.internal:6380/0")
    'rediss://tts:***@redis.internal:6380/0'
    >>> redacted("redis://127.0.0.1:6379/0")
    'redis://127.0.0.1:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class RemoteSettings(TierSettings):
    """How a cache uses its Redis server.

    The timeouts, back-off and ``max_value_bytes`` are every shared tier's
    (:class:`~cached_tts._tiers.base.TierSettings`); the rest is Redis's own.
    ``ttl`` is whole seconds >= 1 or a ``timedelta`` of whole seconds (kept
    as its seconds), or ``None``. Anything else raises here (``TypeError``
    or ``ValueError``), rather than failing every write later (a float) or
    deleting entries as they are read (0).

    >>> RemoteSettings().read_timeout, RemoteSettings(ttl=86400).ttl
    (1.0, 86400)
    >>> from datetime import timedelta
    >>> RemoteSettings(ttl=timedelta(days=7)).ttl
    604800
    """

    #: Every key this library writes starts with it.
    prefix: str = "cached-tts:"
    #: Entries expire this long after their last use; ``None`` keeps them.
    ttl: int | timedelta | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.prefix, str):
            raise TypeError(
                f"RemoteSettings.prefix must be a string (keys start with it), got {self.prefix!r}"
            )
        # Frozen: the checked value replaces the given one once, here.
        object.__setattr__(self, "ttl", ttl_seconds(type(self).__name__, self.ttl))

    @property
    def ttl_seconds(self) -> int | None:
        """``ttl`` in whole seconds, as Redis takes it; ``None`` keeps entries."""
        ttl = self.ttl
        return int(ttl.total_seconds()) if isinstance(ttl, timedelta) else ttl


def is_redis_url(url: str) -> bool:
    """Whether ``url`` names a Redis server.

    >>> is_redis_url("rediss://cache:6380/0"), is_redis_url("s3://voices/prod")
    (True, False)
    """
    return urlsplit(url).scheme.lower() in {"redis", "rediss", "unix"}
