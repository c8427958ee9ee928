"""How the object-store tier calls a store, and what the store's answers mean.

fsspec's coroutines run on the filesystem's event loop within one deadline; a
folder (``file://``) gets its conditional create by linking a whole temporary
file into place; a store's errors say whether a create lost a race or a range
was empty; a listing says when an object was written, each store its own way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from cached_tts._atomic import TEMP_PREFIX

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

__all__ = [
    "OBJECT_STORE_PROTOCOLS",
    "error_code",
    "link_new_file",
    "lost_race",
    "modified",
    "run_async",
    "store_errors",
]

#: URL schemes this tier serves, and the extra that installs each one's package.
OBJECT_STORE_PROTOCOLS: Final[Mapping[str, str | None]] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "file": None,
    "memory": None,
}

# A conditional write that loses to another one: 412, or 409 when S3 sees them in flight together.
_LOST_RACE_CODES: Final = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})

# Objects in a shared folder are read by every machine of the fleet; who may
# read them is the folder's business, as a bucket's policy is for a bucket.
_SHARED_FILE_MODE = 0o644


def run_async(
    fs: AbstractFileSystem, function: Any, *args: Any, timeout: float | None, **kwargs: Any
) -> Any:
    """Run a coroutine function of ``fs`` on its event loop; ``TimeoutError`` after ``timeout``.

    One deadline over the whole call, whatever the store's own timeouts and
    retries: the asyncio timeout cancels the request.
    """
    from fsspec.asyn import sync  # type: ignore[import-untyped]
    from fsspec.exceptions import FSTimeoutError  # type: ignore[import-untyped]

    try:
        return sync(fs.loop, function, *args, timeout=timeout, **kwargs)
    except FSTimeoutError as exc:
        raise TimeoutError(f"no answer within {timeout or 0:.3g} s") from exc


def link_new_file(path: str, data: bytes) -> None:
    """Write a whole file under a temporary name, then link it to ``path`` unless that exists."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, _SHARED_FILE_MODE)
        os.link(temp, path)  # atomic; FileExistsError when another writer was first
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def store_errors(scheme: str) -> tuple[type[BaseException], ...]:
    """What a store's housekeeping calls raise when the store fails, for the command line.

    fsspec maps most failures to ``OSError``; botocore's connection errors and
    an expired deadline (``asyncio.TimeoutError``, not an ``OSError`` before
    Python 3.11) come through as they are.
    """
    import asyncio

    errors: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)
    if OBJECT_STORE_PROTOCOLS.get(scheme) == "s3":
        with contextlib.suppress(ImportError):
            from botocore.exceptions import (  # type: ignore[import-untyped]
                BotoCoreError,
                ClientError,
            )

            errors += (BotoCoreError, ClientError)
    return errors


def lost_race(exc: BaseException) -> bool:
    """Whether a failed create means another writer created the object first."""
    return isinstance(exc, FileExistsError) or error_code(exc) in _LOST_RACE_CODES


def error_code(exc: BaseException) -> str | None:
    """The S3 error code behind an error s3fs raised ("InvalidRange"...), if any."""
    response = getattr(exc.__cause__, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code if isinstance(code, str) else None


def modified(info: Mapping[str, Any]) -> float | None:
    """When a listing says an object was last written, in seconds since the epoch.

    >>> modified({"LastModified": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
    1767225600.0
    >>> modified({"mtime": 12.5}), modified({})
    (12.5, None)
    """
    # S3, Azure, local and memory, GCS: each names it its own way.
    for field in ("LastModified", "last_modified", "mtime", "created", "updated"):
        value = info.get(field)
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return dt.datetime.fromisoformat(value).timestamp()
    return None
