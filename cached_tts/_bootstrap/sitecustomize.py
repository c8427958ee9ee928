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
``sys.path``) still runs, after this one.
"""

import os
import sys

_FOLDER = os.path.dirname(os.path.abspath(__file__))


class _EnableOnChatterboxImport:
    """A meta-path finder that finds nothing; it enables caching when chatterbox is imported.

    It stays on ``sys.meta_path`` once done (returning ``None`` at once): taking
    itself off while the import system walks that list would skip the next finder.
    """

    def __init__(self) -> None:
        self.done = False

    def find_spec(self, name: str, *_path_and_target: object) -> None:
        if self.done or not (name == "chatterbox" or name.startswith("chatterbox.")):
            return
        self.done = True
        if os.environ.get("CACHED_TTS_DISABLE") == "1":
            return
        try:
            from cached_tts._patching import enable

            enable()
        except Exception:  # the program must run, cached or not
            import logging

            logging.getLogger("cached_tts").warning(
                "cached-tts could not enable caching in this process; it runs uncached",
                exc_info=True,
            )


def _run_next_sitecustomize() -> None:
    """Run the ``sitecustomize`` that this one hides, if the path holds one.

    Its errors are its own: Python reports them as it would without us.
    """
    try:
        from importlib.machinery import PathFinder

        others = [entry for entry in sys.path if os.path.abspath(entry or ".") != _FOLDER]
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


# Only as Python's start-up hook: imported under its package name (by a doctest
# run, say) it changes nothing.
if __name__ == "sitecustomize":
    if os.environ.get("CACHED_TTS_DISABLE") != "1":
        sys.meta_path.insert(0, _EnableOnChatterboxImport())
    _run_next_sitecustomize()
