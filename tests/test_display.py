"""What a cache and its stats show at the end of a notebook cell."""

from __future__ import annotations

import pytest
from IPython.lib.pretty import pretty
from strategies import voice_entry

from cached_tts import CacheStats, ConditionalCache, EntryKey
from cached_tts._cache.display import EntryRow, entry_table, format_bytes

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


def test_a_memory_only_cache_shows_only_its_memory_tier():
    cache = ConditionalCache(cache_dir=None)

    shown = cache._repr_html_()

    assert "memory only" in shown
    assert "<tr><th>entries</th><td>0</td></tr>" in shown
    assert "disk" not in shown.replace("memory only", "")
    assert "disk" not in pretty(cache)


def test_print_of_stats_is_the_table_not_a_dataclass_repr():
    shown = str(STATS)

    assert shown == pretty(STATS)
    assert "CacheStats(" not in shown
    assert "seconds saved: 9.2" in shown


def _rows(cache):
    return [EntryRow.from_scanned(item) for item in cache._store.scan()]


def test_each_entry_lists_its_name_model_size_times_and_source_under_a_header(used_cache):
    files = used_cache._store.files()

    header, line = entry_table(_rows(used_cache))

    assert header.split() == ["HASH", "MODEL", "SIZE", "CREATED", "LAST", "USED", "SOURCE"]
    assert line.split()[0] == files[0].path.stem[:12]  # the entry's file name: what rm takes
    assert line.endswith("/voices/alice.wav")
    assert format_bytes(files[0].size) in line


def test_the_long_form_shows_whole_digests_and_the_clip_hash(used_cache):
    files = used_cache._store.files()

    header, line = entry_table(_rows(used_cache), long=True)

    assert header.split()[:3] == ["HASH", "CLIP", "HASH"]
    assert line.split()[:3] == [files[0].path.stem, "c" * 64, "w" * 64]


def test_sizes_align_right_and_every_column_lines_up(tmp_path):
    cache = ConditionalCache(tmp_path / "two")
    for n, width in ((1, 1), (2, 4000)):
        key = EntryKey(content=f"{n}" * 64, weights="w" * 64, settings=())
        entry = voice_entry(floats=width)
        cache.get_or_prepare(key, lambda entry=entry: entry, source=f"/voices/{n}.wav")

    lines = entry_table(_rows(cache))

    size_end = lines[0].index("SIZE") + len("SIZE")
    for line in lines[1:]:
        assert line[size_end - 1] == "B"  # every size ends under the header's end
        assert line.index("/voices/") == lines[0].index("SOURCE")


def test_a_damaged_entry_is_listed_as_damaged(used_cache):
    path = used_cache._store.files()[0].path
    path.write_bytes(path.read_bytes()[:-1] + b"x")

    _header, line = entry_table(_rows(used_cache))

    assert "damaged" in line
    assert "verify --fix" in line


def test_tts_cache_shows_the_cache_models_use_enables_first_then_the_last_used(tmp_path):
    from cached_tts._wrapping.cache_choice import (
        cache_in_use,
        chosen_fallback_cache,
        note_cache_in_use,
        set_fallback_cache,
    )

    saved = chosen_fallback_cache()
    mine, enabled_with = ConditionalCache(tmp_path / "a"), ConditionalCache(tmp_path / "b")
    try:
        set_fallback_cache(None)
        note_cache_in_use(mine)
        assert cache_in_use() is mine  # the one a model used last
        set_fallback_cache(enabled_with)
        assert cache_in_use() is enabled_with  # enable(cache=...) decides for every model
    finally:
        set_fallback_cache(saved)
