"""The docs say what the code does: checked where the code holds the facts."""

from __future__ import annotations

from pathlib import Path

from cached_tts._versions import PREPARATION_LIBRARIES

ROOT = Path(__file__).resolve().parent.parent


def key_table_settings_row() -> str:
    guide = (ROOT / "docs" / "guide.md").read_text()
    section = guide.split("## What the key is, and why", 1)[1].split("\n## ", 1)[0]
    (row,) = [line for line in section.splitlines() if line.startswith("| `settings` |")]
    return row


def test_the_guides_key_table_names_every_version_the_key_holds():
    row = key_table_settings_row()
    missing = [name for name in (*PREPARATION_LIBRARIES, "libsndfile") if name not in row]
    assert missing == []
    assert "chatterbox" in row
    assert "fork" in row  # a fork's distribution and source digest, not only chatterbox-tts
