"""The entry modules load without torch: commands that load no model import none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from strategies import voice_entry

import cached_tts
from cached_tts._entries.format import encode
from cached_tts._keys.key import EntryKey

ROOT = Path(cached_tts.__file__).resolve().parent

# Loads modules of the package (not its __init__, which loads the cache) with
# torch made unimportable, and reports them.
SCRIPT = """
import importlib, importlib.abc, sys, types

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == "torch" or name == "safetensors.torch":
            raise ImportError(f"{name} was imported")
        return None

sys.meta_path.insert(0, NoTorch())
package = types.ModuleType("cached_tts")
package.__path__ = [sys.argv[1]]
sys.modules["cached_tts"] = package
for name in ("cached_tts._exceptions", "cached_tts._entries.schema", "cached_tts._entries.entry"):
    importlib.import_module(name)
from cached_tts._entries.format import check  # what ls and verify run on every entry
with open(sys.argv[2], "rb") as f:
    print(check(f.read(), sys.argv[3]))
print(check(b"garbage", sys.argv[3]))
"""


def test_the_entry_modules_and_checking_an_entry_import_no_torch(tmp_path):
    key = EntryKey(content="c" * 64, weights="w", settings=())
    (tmp_path / "entry").write_bytes(encode(key, voice_entry(), source="a.wav", created=0.0))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT), str(tmp_path / "entry"), key.digest],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    whole, garbage = result.stdout.splitlines()
    assert "source='a.wav'" in whole
    assert whole.endswith(", None)")
    assert garbage.startswith("(None, 'the entry is")
