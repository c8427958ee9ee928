"""What the subcommands share: options, parsing of sizes and durations, formatting."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from cached_tts._cache.cache import default_cache_dir
from cached_tts._cache.display import format_bytes, plural
from cached_tts._exceptions import CachedTTSError
from cached_tts._tiers.redis.tier import REMOTE_ENV

if TYPE_CHECKING:
    from cached_tts._tiers.disk.store import DiskStore

__all__ = [
    "CommandError",
    "add_cache_dir",
    "add_model_options",
    "add_remote",
    "format_bytes",
    "format_time",
    "parse_duration",
    "parse_size",
    "plural",
    "remote_of",
    "store_of",
]


class CommandError(CachedTTSError):
    """A failure the command reports in one line and exits 1 for."""


def add_cache_dir(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir``, defaulting to the library's default folder."""
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"cache folder (default: $CACHED_TTS_CACHE_DIR or {default_cache_dir()})",
    )


def cache_dir_of(args: argparse.Namespace) -> Path:
    """The cache folder the user asked for, or the default one."""
    folder: Path | None = args.cache_dir
    return (folder or default_cache_dir()).expanduser()


def store_of(args: argparse.Namespace) -> DiskStore:
    """The cache folder's :class:`DiskStore`, for reading; a path that cannot be one is an error.

    A folder that does not exist yet is fine: it holds no entries.
    """
    from cached_tts._tiers.disk.store import DiskStore

    folder = cache_dir_of(args)
    entries = folder / "entries"
    existing = next((p for p in (entries, folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CommandError(
            f"--cache-dir {folder}: {existing} is a file, not a folder; give a cache folder"
        )
    return DiskStore(folder)


def add_remote(parser: argparse.ArgumentParser, *, from_env: bool = True, use: str = "") -> None:
    """``--remote URL,...``: the shared tiers; by default ``$CACHED_TTS_REMOTE`` if ``from_env``.

    ``use`` says what the command does with them. Commands that delete from the
    fleet's shared tiers pass ``from_env=False``: they touch a tier only when it is named.
    """
    if from_env:
        default = os.environ.get(REMOTE_ENV) or None
        where = f"default: ${REMOTE_ENV}; '' for none"
    else:
        default = None
        where = f"only when given: ${REMOTE_ENV} is not used here"
    parser.add_argument(
        "--remote",
        metavar="URL[,URL...]",
        default=default,
        help="the fleet's shared tiers: Redis (redis://...) or object-store (s3://bucket/prefix, "
        f"gs://, az://, file://) URLs, separated by commas ({where}){use}",
    )


def remote_of(args: argparse.Namespace) -> str | None:
    """The shared tiers' URLs the command uses (comma-separated), or ``None`` for none."""
    url: str | None = args.remote
    return url or None


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device`` and ``--random-weights``."""
    parser.add_argument(
        "--model",
        default="english",
        choices=["english", "multilingual", "turbo"],
        help="which Chatterbox (default english)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="auto picks cuda, then mps, then cpu",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="the real architecture with random weights: works offline, the audio is noise",
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``30d``, ``12h``, ``90m``, ``45s`` or ``2w``.

    >>> parse_duration("30d"), parse_duration("90m"), parse_duration("1.5h")
    (2592000.0, 5400.0, 5400.0)
    """
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: write a number and a unit, like 30d, 12h, 90m or 45s"
        )
    return float(match[1]) * _SECONDS_PER[match[2]]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in a size such as ``500000``, ``200MB``, ``1.5G`` or ``64KiB``.

    Decimal units (KB, MB, GB) are powers of 1000; binary ones (KiB, MiB, GiB)
    powers of 1024.

    >>> parse_size("500000"), parse_size("200MB"), parse_size("64KiB")
    (500000, 200000000, 65536)
    """
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: write bytes, or a number with KB, MB, GB (or KiB, MiB, GiB)"
        )
    unit = match[2].lower().rstrip("b")
    base = 1024 if unit.endswith("i") else 1000
    power = "kmgt".find(unit[:1]) + 1 if unit else 0
    return int(float(match[1]) * base**power)


def format_time(timestamp: float) -> str:
    """A UNIX time as local ``YYYY-MM-DD HH:MM``."""
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")


def iso_time(timestamp: float) -> str:
    """A UNIX time as ISO 8601 in UTC, for ``--json``.

    >>> iso_time(0)
    '1970-01-01T00:00:00+00:00'
    """
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc).isoformat(timespec="seconds")
