"""enable() patches chatterbox's classes when they are imported, never importing them itself.

Each case runs in a fresh interpreter, where chatterbox is not imported yet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cached_tts

pytestmark = pytest.mark.slow

ROOT = Path(cached_tts.__file__).resolve().parent.parent


def fresh_python(program: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHED_TTS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # A hook that deadlocked or recursed would hang or raise here.
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def test_enable_imports_nothing_heavy_and_patches_every_class_when_chatterbox_is_imported():
    shown = fresh_python(
        """
        import sys
        import cached_tts

        cached_tts.enable()
        print("torch" in sys.modules, "chatterbox" in sys.modules)

        from chatterbox.tts import ChatterboxTTS  # the hooks run inside this import
        from cached_tts._wrapping.patching import _patched, patchable_classes
        import cached_tts._wrapping.models as models

        print(all("cache" in cls.__dict__ for cls in patchable_classes()))
        # The Cached... subclass wraps the original, not the patch: made first.
        original = _patched[ChatterboxTTS]["prepare_conditionals"]
        print(models.CachedChatterboxTTS.__dict__["prepare_conditionals"].__wrapped__ is original)
        cached_tts.disable()
        print(ChatterboxTTS.__dict__["prepare_conditionals"] is original)
        """
    )

    assert shown == ["False", "False", "True", "True", "True"]


def test_after_disable_a_module_imported_later_stays_as_it_is():
    shown = fresh_python(
        """
        import cached_tts

        cached_tts.enable()
        cached_tts.disable()
        from chatterbox.tts import ChatterboxTTS
        from chatterbox.vc import ChatterboxVC

        print("cache" in ChatterboxTTS.__dict__, "cache" in ChatterboxVC.__dict__)
        """
    )

    assert shown == ["False", "False"]
