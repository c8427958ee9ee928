"""What one shared tier has done: its hits and errors, as a cache's stats show them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TierStats"]


@dataclass(frozen=True)
class TierStats:
    """What one shared tier (Redis, a bucket...) has done for one cache object.

    >>> TierStats("s3://voices/prod", hits=12, errors=0).hits
    12
    """

    #: Where the tier is (a URL, never with a password).
    name: str
    #: Lookups it served, and calls to it that failed or timed out.
    hits: int
    errors: int
