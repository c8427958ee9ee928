"""What a cache and its stats show at the end of a notebook cell."""

from __future__ import annotations

import pytest
from IPython.lib.pretty import pretty
from strategies import voice_entry

from cached_tts import CacheStats, ConditionalCache, EntryKey
from cached_tts._display import entry_lines, format_bytes

STATS = CacheStats(
    memory_hits=3,
    disk_hits=1,
    misses=5,
    entries=2,
    memory_bytes=330_000,
    disk_entries=7,
    disk_bytes=3 * 1024 * 1024,
    seconds_saved=9.25,
)


@pytest.fixture
def used_cache(tmp_path):
    cache = ConditionalCache(tmp_path / "cache")
    key = EntryKey(content="c" * 64, weights="w" * 64, settings=())
    entry = voice_entry()
    for _ in range(3):
        cache.get_or_prepare(key, lambda: entry, source="/voices/alice.wav")
    return cache


def test_the_stats_html_table_shows_entries_bytes_hits_misses_and_seconds_saved():
    shown = STATS._repr_html_()

    assert shown.startswith("<table>")
    for figure in ("<td>2</td>", "<td>7</td>", "330.0 KB", "3.1 MB", "<td>3</td>", "<td>1</td>"):
        assert figure in shown
    assert "misses: 5" in shown
    assert "seconds saved: 9.2" in shown


def test_the_stats_pretty_text_is_the_same_table():
    shown = pretty(STATS)

    assert shown.splitlines()[1].split() == ["entries", "2", "7"]
    assert shown.splitlines()[3].split() == ["hits", "3", "1"]
    assert "misses: 5, hit rate: 44%" in shown


def test_a_cache_shows_its_folder_and_its_live_stats(used_cache):
    shown_html = used_cache._repr_html_()
    shown_text = pretty(used_cache)

    assert str(used_cache.directory) in shown_html
    assert "misses: 1" in shown_html
    assert "<tr><th>hits</th><td>2</td><td>0</td></tr>" in shown_html
    assert shown_text.startswith("<ConditionalCache")
    assert "misses: 1, hit rate: 67%" in shown_text


def test_a_memory_only_cache_shows_an_empty_disk_tier():
    shown = ConditionalCache(cache_dir=None)._repr_html_()

    assert "memory only" in shown
    assert "<tr><th>entries</th><td>0</td><td>0</td></tr>" in shown


def test_each_disk_entry_lists_its_key_source_size_and_last_use(used_cache):
    files = used_cache._store.files()

    lines = entry_lines(used_cache._store.scan())

    assert len(lines) == 1
    digest, source, size, unit, day, time = lines[0].split()
    assert digest == files[0].path.stem[:12]
    assert source == "/voices/alice.wav"
    assert f"{size} {unit}" == format_bytes(files[0].size)
    assert len(day) == 10
    assert len(time) == 8


def test_a_damaged_entry_is_listed_as_damaged(used_cache):
    path = used_cache._store.files()[0].path
    path.write_bytes(path.read_bytes()[:-1] + b"x")

    (line,) = entry_lines(used_cache._store.scan())

    assert "damaged" in line
