"""Opening an object-store tier on a URL: which package serves a scheme, and its options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from cached_tts._tiers.base import TierSettings
from cached_tts._tiers.objectstore.calls import OBJECT_STORE_PROTOCOLS
from cached_tts._tiers.objectstore.tier import ObjectStoreTier
from cached_tts._tiers.redis.settings import redacted

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

__all__ = ["OBJECT_STORE_PROTOCOLS", "is_object_store_url", "open_object_store"]

_PACKAGES: Final = {"s3": "s3fs", "gcs": "gcsfs", "azure": "adlfs"}


def is_object_store_url(url: str) -> bool:
    """Whether ``url`` names an object store (rather than, say, Redis).

    >>> is_object_store_url("s3://voices/prod"), is_object_store_url("redis://cache:6379/0")
    (True, False)
    """
    scheme, sep, _rest = url.partition("://")
    return bool(sep) and scheme.lower() in OBJECT_STORE_PROTOCOLS


def open_object_store(
    url: str,
    settings: TierSettings | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    read_only: bool = False,
) -> ObjectStoreTier:
    """An :class:`ObjectStoreTier` on an fsspec URL.

    fsspec options come from the URL, the store's usual environment variables
    (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...), fsspec's own configuration,
    and ``options`` (which win). ``read_only`` never writes or deletes.

    >>> tier = open_object_store("memory://doctest/voices")
    >>> tier.name, tier.location("ab" * 32)[:30]
    ('memory://doctest/voices', 'memory://doctest/voices/ababab')
    """
    import fsspec

    settings = settings or TierSettings()
    scheme = url.partition("://")[0].lower()
    if not is_object_store_url(url):
        known = ", ".join(f"{name}://" for name in OBJECT_STORE_PROTOCOLS)
        raise ValueError(f"{redacted(url)} is not an object-store URL; use one of {known}")
    try:
        cls = fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        extra = OBJECT_STORE_PROTOCOLS[scheme]
        package = _PACKAGES.get(extra or "", "its fsspec package")
        raise ImportError(
            f"A {scheme}:// cache tier needs {package}: pip install 'cached-tts[{extra}]'"
        ) from exc
    kwargs = _filesystem_options(cls, scheme, url, settings, options or {})
    root = cls._strip_protocol(url).rstrip("/")

    def open_filesystem() -> AbstractFileSystem:
        # Our own instance: the timeouts set here must not leak into fsspec's
        # shared instances, nor theirs into ours.
        fs: AbstractFileSystem = cls(skip_instance_cache=True, **kwargs)
        if scheme in ("s3", "s3a"):
            fs.retries = 1  # s3fs's own retry loop; one attempt, the back-off does the rest
        return fs

    return ObjectStoreTier(
        open_filesystem,
        scheme=scheme,
        root=root,
        name=redacted(url).rstrip("/"),
        settings=settings,
        read_only=read_only,
    )


def _filesystem_options(
    cls: type[AbstractFileSystem],
    scheme: str,
    url: str,
    settings: TierSettings,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The URL's options, then ``options``; for S3, socket timeouts and no retries below them."""
    from fsspec.config import conf  # type: ignore[import-untyped]

    kwargs: dict[str, Any] = dict(cls._get_kwargs_from_urls(url))
    if scheme not in ("file", "memory"):
        # A listing remembered from minutes ago would make scans and the
        # exists() before a write see objects that are gone, or miss new ones.
        kwargs["use_listings_cache"] = False
    kwargs.update(options)
    if scheme in ("s3", "s3a"):
        # s3fs reads with parallel ranges above max_concurrency 1, asking each
        # object's size first: a HEAD before every GET, and a HEAD and a LIST
        # for every miss. An entry is small: one GET, hit or miss.
        kwargs.setdefault("max_concurrency", 1)
        # fsspec's configuration would replace config_kwargs whole; merge it here.
        configured = dict(conf.get("s3", {}).get("config_kwargs", {}))
        kwargs["config_kwargs"] = {
            "connect_timeout": settings.connect_timeout,
            "read_timeout": settings.read_timeout,
            "retries": {"total_max_attempts": 1},
            **configured,
            **kwargs.get("config_kwargs", {}),
        }
    return kwargs
