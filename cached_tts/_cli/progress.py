"""One progress display for a command, and upstream kept quiet under it.

A command shows its steps on stderr: the model build as one line with its
duration, then one bar over the texts or clips (on a terminal only). While it
runs, chatterbox's own ``tqdm`` bars are disabled and its ``print`` calls go to
the ``cached_tts`` log (seen with ``-v``), so stdout carries only the
command's own output.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["Progress", "quiet_upstream"]

logger = logging.getLogger("cached_tts")


class Progress:
    """Steps and bars on ``stream`` (default stderr); bars only on a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        """``title...`` then ``done in N s`` on the same line (on a terminal)."""
        started = time.perf_counter()
        self.stream.write(f"{title}...")
        self.stream.write("" if self.live else "\n")
        self.stream.flush()
        try:
            yield
        except BaseException:
            self.stream.write(" failed\n" if self.live else "")
            raise
        seconds = time.perf_counter() - started
        ending = f" done in {seconds:.1f} s\n"
        self.stream.write(ending if self.live else f"{title}: done in {seconds:.1f} s\n")
        self.stream.flush()

    def bar(self, total: int, unit: str) -> Any:
        """A bar over ``total`` units; nothing when the stream is not a terminal."""
        from tqdm import tqdm

        bar_class = getattr(_original_tqdm, "value", None) or tqdm
        return bar_class(
            total=total, unit=unit, file=self.stream, disable=not self.live, dynamic_ncols=True
        )


class _LogLines(io.TextIOBase):
    """A text stream whose lines go to the log at debug level."""

    def __init__(self) -> None:
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            if line.strip():
                logger.debug("chatterbox says: %s", line.rstrip())
        return len(text)


class _Holder:
    value: Any = None


_original_tqdm = _Holder()


def _silent_tqdm(original: type) -> type:
    class SilentTqdm(original):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


@contextlib.contextmanager
def quiet_upstream() -> Iterator[None]:
    """Upstream's bars off, its prints in the log and its warnings hidden, until the block ends.

    Chatterbox binds ``tqdm`` when each module is imported, so both the name
    in ``tqdm`` (for modules imported inside the block) and the names already
    bound in ``chatterbox.*`` modules are replaced, and put back after.
    """
    import tqdm as tqdm_module

    original = tqdm_module.tqdm
    silent = _silent_tqdm(original)
    _original_tqdm.value = original
    rebound: list[Any] = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("chatterbox") and getattr(module, "tqdm", None) is original
    ]
    setattr(tqdm_module, "tqdm", silent)  # noqa: B010 -- mypy sees no stubs for tqdm
    for module in rebound:
        setattr(module, "tqdm", silent)  # noqa: B010
    # Upstream warns through the root logger ("Reference mel length..."):
    # kept for -v, hidden under the display otherwise. Our own logger's
    # records still reach the root's handlers: a logger's level is checked
    # only where a record starts.
    root = logging.getLogger()
    root_level = root.level
    if not logger.isEnabledFor(logging.DEBUG):
        root.setLevel(max(root_level, logging.ERROR))
    try:
        with contextlib.redirect_stdout(_LogLines()):
            yield
    finally:
        root.setLevel(root_level)
        setattr(tqdm_module, "tqdm", original)  # noqa: B010
        _original_tqdm.value = None
        for name, module in list(sys.modules.items()):
            if name.startswith("chatterbox") and getattr(module, "tqdm", None) is silent:
                setattr(module, "tqdm", original)  # noqa: B010
