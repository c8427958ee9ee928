"""The cache-only subcommands: ls, stats, verify, prune, clear (no model loaded)."""

import io
import json
import os
import subprocess
import sys
import time

import pytest
from strategies import voice_entry

from cached_tts._cli import main
from cached_tts._cli.options import parse_duration, parse_size
from cached_tts._keys.key import EntryKey
from cached_tts._tiers.disk.store import DiskStore
from cached_tts.testing import write_voice_clip

SUBCOMMANDS = ["demo", "say", "warm", "ls", "stats", "verify", "prune", "clear", "rm"]


def _key(n):
    return EntryKey(content=f"{n:x}" * 64, weights="weights:" + "ab" * 32, settings=())


@pytest.fixture
def folder(tmp_path):
    """A cache folder with three entries (0, 1, 2), used in that order, 1.5 s each to prepare."""
    store = DiskStore(tmp_path / "cache")
    store.prepare()
    for n in range(3):
        entry = voice_entry(float(n), prepare_seconds=1.5)
        store.write(_key(n), entry, source=f"/voices/v{n}.wav")
        old = time.time() - 86400 * (10 - n)  # entry 0 is the least recently used
        os.utime(store.path_for(_key(n)), (old, old))
    return tmp_path / "cache"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def entry_files(folder):
    return sorted((folder / "entries").glob("*.safetensors"))


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "--cache-dir" in capsys.readouterr().out


def test_python_dash_m_runs_the_same_command(folder):
    result = subprocess.run(
        [sys.executable, "-m", "cached_tts", "ls", "--cache-dir", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "/voices/v1.wav" in result.stdout


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "--older-than", "3 fortnights"])
    assert exit_.value.code == 2
    assert "not a duration" in capsys.readouterr().err


def test_ls_shows_one_row_per_entry_with_its_source(folder, capsys):
    code, out, _ = run(capsys, "ls", "--cache-dir", str(folder))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["HASH", "MODEL", "SIZE"]
    assert len(lines) == 4
    # The entry's own name (its file's), most recently used first.
    assert lines[1].startswith(DiskStore(folder).path_for(_key(2)).stem[:12])
    assert "/voices/v0.wav" in lines[3]


def test_ls_long_shows_each_entrys_whole_name_and_clip_hash(folder, capsys):
    code, out, _ = run(capsys, "ls", "--long", "--cache-dir", str(folder))
    assert code == 0
    cells = out.splitlines()[1].split()
    assert cells[:2] == [DiskStore(folder).path_for(_key(2)).stem, "2" * 64]


def test_ls_json_lists_the_same_fields(folder, capsys):
    code, out, _ = run(capsys, "ls", "--json", "--cache-dir", str(folder))
    assert code == 0
    rows = json.loads(out)
    assert {row["source"] for row in rows} == {f"/voices/v{n}.wav" for n in range(3)}
    fields = {"content_hash", "source", "model_fingerprint", "size", "created", "last_used"}
    assert all(fields <= row.keys() for row in rows)
    assert rows[0]["content_hash"] == "2" * 64
    assert rows[0]["hash"] == DiskStore(folder).path_for(_key(2)).stem


def test_ls_of_an_empty_or_missing_folder_says_so(tmp_path, capsys):
    code, out, _ = run(capsys, "ls", "--cache-dir", str(tmp_path / "nothing"))
    assert code == 0
    assert "No entries" in out


@pytest.mark.parametrize("command", ["ls", "stats", "verify", "rm"])
@pytest.mark.parametrize("below", ["", "cache"])
def test_a_cache_dir_that_is_a_file_is_one_line_that_says_so(tmp_path, capsys, command, below):
    afile = tmp_path / "file"
    afile.write_text("x")
    extra = ["abcd"] if command == "rm" else []
    code, _, err = run(capsys, command, *extra, "--cache-dir", str(afile / below))
    assert code == 1
    assert err == (
        f"cached-tts: error: --cache-dir {afile / below}: {afile} is a file, not a folder; "
        "give a cache folder\n"
    )


def test_stats_reports_entries_bytes_and_seconds_to_rebuild(folder, capsys):
    code, out, _ = run(capsys, "stats", "--json", "--cache-dir", str(folder))
    assert code == 0
    figures = json.loads(out)
    assert figures["entries"] == 3
    assert figures["disk_bytes"] == sum(f.stat().st_size for f in entry_files(folder))
    assert figures["seconds_to_rebuild"] == pytest.approx(4.5)
    assert "per process" in figures["note"]
    code, out, _ = run(capsys, "stats", "--cache-dir", str(folder))
    assert "per process" in out


def test_stats_shows_the_disk_against_its_cap_as_ccache_does(folder, capsys):
    used = sum(f.stat().st_size for f in entry_files(folder))
    code, out, _ = run(capsys, "stats", "--cache-dir", str(folder), "--max-bytes", str(used * 4))
    assert code == 0
    assert "(25%) of max_disk_bytes" in out
    code, out, _ = run(capsys, "stats", "--cache-dir", str(folder))
    assert "of 1.1 GB (0%)" in out  # the library's default cap, 1 GiB


def test_verify_passes_a_sound_cache(folder, capsys):
    code, out, _ = run(capsys, "verify", "--cache-dir", str(folder))
    assert code == 0
    assert "3 entries checked, 0 damaged" in out


def test_counts_of_one_read_in_the_singular(folder, capsys):
    for stale in entry_files(folder)[1:]:
        stale.unlink()
    assert "1 entry checked, 0 damaged" in run(capsys, "verify", "--cache-dir", str(folder))[1]
    assert "Removed 1 entry from" in run(capsys, "clear", "--yes", "--cache-dir", str(folder))[1]


def test_verify_reports_a_corrupt_entry_and_exits_1_until_fixed(folder, capsys):
    victim = entry_files(folder)[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, out, err = run(capsys, "verify", "--cache-dir", str(folder))
    assert code == 1
    assert victim.name in out
    assert "verify --fix" in err
    assert victim.exists()
    code, out, _ = run(capsys, "verify", "--fix", "--cache-dir", str(folder))
    assert code == 0
    assert not victim.exists()
    assert len(entry_files(folder)) == 2
    assert run(capsys, "verify", "--cache-dir", str(folder))[0] == 0


def test_verify_catches_an_entry_renamed_to_another_key(folder, capsys):
    first, second = entry_files(folder)[:2]
    first.replace(second)  # a sound entry, under the wrong name
    code, out, _ = run(capsys, "verify", "--cache-dir", str(folder))
    assert code == 1
    assert "does not match the stored key" in out


def test_prune_older_than_removes_only_entries_unused_that_long(folder, capsys):
    code, out, _ = run(capsys, "prune", "--older-than", "9d", "--cache-dir", str(folder))
    assert code == 0
    assert "Removed 2 entries" in out  # unused for 10 and 9.x days; the 8-day one stays
    assert not DiskStore(folder).path_for(_key(0)).exists()
    assert DiskStore(folder).path_for(_key(2)).exists()


def test_prune_max_bytes_keeps_the_most_recently_used(folder, capsys):
    size = entry_files(folder)[0].stat().st_size
    code, _, _ = run(capsys, "prune", "--max-bytes", str(size), "--cache-dir", str(folder))
    assert code == 0
    assert [f.name for f in entry_files(folder)] == [DiskStore(folder).path_for(_key(2)).name]


def test_prune_without_a_limit_is_bad_usage(folder):
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "--cache-dir", str(folder)])
    assert exit_.value.code == 2


def test_clear_refuses_without_yes_when_stdin_is_not_a_terminal(folder, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, _, err = run(capsys, "clear", "--cache-dir", str(folder))
    assert code == 1
    assert "--yes" in err
    assert len(entry_files(folder)) == 3


def test_clear_asks_on_a_terminal_and_honours_the_answer(folder, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    assert run(capsys, "clear", "--cache-dir", str(folder))[0] == 0
    assert len(entry_files(folder)) == 3
    monkeypatch.setattr("builtins.input", lambda _prompt: "yes")
    assert run(capsys, "clear", "--cache-dir", str(folder))[0] == 0
    assert entry_files(folder) == []


def test_clear_yes_removes_every_entry(folder, capsys):
    code, out, _ = run(capsys, "clear", "--yes", "--cache-dir", str(folder))
    assert code == 0
    assert "Removed 3 entries" in out
    assert entry_files(folder) == []


def test_sizes_and_durations_parse_as_people_write_them():
    assert parse_size("1GiB") == 1024**3
    assert parse_size("1.5GB") == 1_500_000_000
    assert parse_duration("12h") == 43200


def test_an_unexpected_failure_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    def broken(_args):
        raise RuntimeError("CUDA is not available")

    monkeypatch.setattr("cached_tts._cli.voice_commands._load_step", lambda a, *_: broken(a))
    voice = write_voice_clip(tmp_path / "voice.wav", seconds=0.5)
    code, _, err = run(
        capsys,
        "say",
        "Hi.",
        "--voice",
        str(voice),
        "--out",
        str(tmp_path / "o.wav"),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert code == 1
    assert err.endswith(
        "cached-tts: error: CUDA is not available (RuntimeError); run with -v for the traceback\n"
    )
