"""Any failure as one line a person can act on: never a bare exception name."""

from __future__ import annotations

import errno

from cached_tts._exceptions import CachedTTSError

__all__ = ["one_line"]

# What an errno means for a file the command was asked to use.
_ERRNO_HINTS = {
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "this is a folder, not a file",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
}


def one_line(exc: BaseException, *, verbose: bool = False) -> str:
    """What went wrong, in one line, without the exception's class name up front.

    >>> one_line(FileNotFoundError(2, "No such file or directory", "/tmp/x.wav"))
    '/tmp/x.wav: no such file or folder'
    >>> one_line(EOFError())
    'an input ended early (EOFError); run with -v for the traceback'
    >>> one_line(ValueError("bad value"))
    'bad value (ValueError); run with -v for the traceback'
    """
    if isinstance(exc, CachedTTSError):
        return str(exc)
    if isinstance(exc, OSError):
        return _os_error(exc)
    message = " ".join(str(exc).split()) or _UNNAMED.get(type(exc), "an unexpected failure")
    hint = "" if verbose else "; run with -v for the traceback"
    return f"{message} ({type(exc).__name__}){hint}"


_UNNAMED: dict[type[BaseException], str] = {
    EOFError: "an input ended early",
    MemoryError: "out of memory",
}


def _os_error(exc: OSError) -> str:
    reason = _ERRNO_HINTS.get(exc.errno or -1) or (exc.strerror or str(exc)).lower()
    if exc.filename is None:
        return reason
    target = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    return f"{target}: {reason}"
