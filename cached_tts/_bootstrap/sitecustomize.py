"""Caching for every Python process whose ``$PYTHONPATH`` starts with this folder.

``cached-tts run`` (or a container's ``PYTHONPATH`` setting) puts this folder
first on the path, and Python imports this module at start-up, in every process
of the tree: the command, its ``subprocess`` children, ``multiprocessing`` spawn
and forkserver workers, uvicorn's and gunicorn's workers.

At start-up it only adds a finder to ``sys.meta_path`` that finds nothing: it
imports the standard library's ``os`` and ``sys`` alone, so a process that never
imports chatterbox runs as it would plain (no torch, no cached_tts). When the
process first imports ``chatterbox``, the finder calls
:func:`cached_tts.enable`, which patches each model class when its module has
been imported. So whatever the program does before it imports chatterbox (an
import shim, ``torch.set_num_threads``, environment variables, ``sys.path``)
happens as it would plain.

``CACHED_TTS_DISABLE=1`` in a process's environment leaves it alone. A failure
here is logged, never raised: the program then runs uncached. A
``sitecustomize`` module that the environment already had (the next one on
``sys.path`` after this folder) still runs, after this one.

Two bootstrap folders may sit on one path (a pipx install's and a
virtualenv's, or this one spelled through a symlink): each acts once per
process, only the first adds its finder, and the chain goes on to the
``sitecustomize`` after them.
"""

# Any Python 3.7+ of the tree runs this module, not only cached-tts's own (a
# tool's, the system's): annotations stay unevaluated, and nothing newer is used.
from __future__ import annotations

import os
import sys

# Real paths: a path entry may spell the folder through a symlink.
_FOLDER = os.path.dirname(os.path.realpath(__file__))

# The folders of the bootstraps that have run in this process. Kept on `sys`:
# each copy of this module (one per folder) is a module of its own.
_RAN = "_cached_tts_bootstrap_folders"


class _EnableOnChatterboxImport:
    """A meta-path finder that finds nothing; it enables caching when chatterbox is imported.

    It stays on ``sys.meta_path`` once done (returning ``None`` at once): taking
    itself off while the import system walks that list would skip the next finder.
    """

    def __init__(self) -> None:
        self.done = False

    # The import system's signature, so that `target=` by keyword works too.
    def find_spec(
        self,
        name: str,
        path: object = None,  # noqa: ARG002 -- a finder's signature; it finds nothing
        target: object = None,  # noqa: ARG002
    ) -> None:
        if self.done or not (name == "chatterbox" or name.startswith("chatterbox.")):
            return
        self.done = True
        if os.environ.get("CACHED_TTS_DISABLE") == "1":
            return
        try:
            from cached_tts._wrapping.patching import enable

            enable()
        except Exception:  # the program must run, cached or not
            import logging

            logging.getLogger("cached_tts").warning(
                "cached-tts could not enable caching in this process; it runs uncached",
                exc_info=True,
            )


def _run_next_sitecustomize(ran: list[str]) -> None:
    """Run the ``sitecustomize`` that this one hides, if the path holds one.

    Only entries after this folder count (one before it may be a sitecustomize
    that chained to this one), less the bootstrap folders that have run. Its
    errors are its own: Python reports them as it would without us.
    """
    try:
        from importlib.machinery import PathFinder

        entries = [entry for entry in sys.path if isinstance(entry, str)]
        folders = [os.path.realpath(entry or ".") for entry in entries]
        after = folders.index(_FOLDER) + 1 if _FOLDER in folders else 0
        others = [
            entry
            # No strict=: it is Python 3.10's, and the lists are one length by construction.
            for entry, folder in zip(entries[after:], folders[after:])  # noqa: B905
            if folder not in ran
        ]
        spec = PathFinder.find_spec("sitecustomize", others)
    except Exception:  # an odd sys.path entry: say so, and start as if there were none
        import logging

        logging.getLogger("cached_tts").warning(
            "cached-tts could not look for another sitecustomize", exc_info=True
        )
        return
    if spec is None or spec.loader is None:
        return
    import importlib.util

    module = importlib.util.module_from_spec(spec)
    # Under its own name, as Python would have imported it.
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


def _start() -> None:
    """Add the finder, once per process, then run the next ``sitecustomize``."""
    ran: list[str] = sys.__dict__.setdefault(_RAN, [])
    if _FOLDER in ran:  # this folder again, further down the chain
        return
    if not ran and os.environ.get("CACHED_TTS_DISABLE") != "1":
        sys.meta_path.insert(0, _EnableOnChatterboxImport())
    ran.append(_FOLDER)
    _run_next_sitecustomize(ran)


# Only as Python's start-up hook: imported under its package name (by a doctest
# run, say) it changes nothing.
if __name__ == "sitecustomize":
    _start()
