"""What the command line checks before it loads a model, and how it fails: one line, always."""

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest
import soundfile
import torch
from strategies import voice_entry

from cached_tts import ConditionalCache, EntryKey, __version__
from cached_tts._cli import main
from cached_tts.testing import write_voice_clip


@pytest.fixture(autouse=True)
def _never_load_a_model(monkeypatch):
    """Every check here must fail before a model is loaded."""

    def refuse(*_args, **_kwargs):
        pytest.fail("a model was loaded before the check")

    monkeypatch.setattr("cached_tts._cli.loading.load_model", refuse)


@pytest.fixture
def voice(tmp_path):
    return write_voice_clip(tmp_path / "voice.wav", seconds=0.5)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def say(capsys, voice, *argv):
    return run(capsys, "say", "Hi.", "--voice", voice, "--random-weights", *argv)


# -- say's output --------------------------------------------------------------------


def test_say_refuses_an_output_in_a_missing_folder_before_loading(voice, tmp_path, capsys):
    target = tmp_path / "nonexistent" / "dir" / "x.wav"
    code, _, err = say(capsys, voice, "--out", target)
    assert code == 1
    assert err.endswith(f"the folder {target.parent} does not exist; create it first\n")
    assert not (tmp_path / "nonexistent").exists()


def test_say_refuses_an_extension_it_cannot_write(voice, tmp_path, capsys):
    code, _, err = say(capsys, voice, "--out", tmp_path / "x.m4a")
    assert code == 1
    assert "cannot write .m4a; end it with one of" in err
    assert ".flac" in err


class FakeModel:
    sr = 24_000

    def __init__(self):
        self.cache = ConditionalCache(None, remote=None)

    def generate(self, _text, **_options):
        return torch.zeros(1, 2400)


def test_say_writes_one_text_to_a_flac_file_not_a_folder(voice, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cached_tts._cli.voice_commands._load_step", lambda *_: FakeModel())
    target = tmp_path / "greeting.flac"
    code, out, _ = say(capsys, voice, "--out", target, "--cache-dir", tmp_path / "cache")
    assert code == 0
    assert soundfile.info(str(target)).format == "FLAC"
    assert out.startswith(f"Wrote 1 audio file to {target}")


def test_say_refuses_one_audio_file_for_several_texts(voice, tmp_path, capsys):
    code, _, err = run(capsys, "say", "one", "two", "--voice", voice, "--out", tmp_path / "x.flac")
    assert code == 1
    assert "2 texts make 2 files: give --out a folder" in err


def test_say_makes_no_folder_before_it_has_something_to_write(tmp_path):
    from cached_tts._cli import voice_commands as _voice_commands

    outputs = _voice_commands._outputs(tmp_path / "lines", 2)
    assert [p.name for p in outputs] == ["001.wav", "002.wav"]
    assert not (tmp_path / "lines").exists()


def test_say_refuses_a_clip_that_is_not_audio_in_one_line(tmp_path, capsys):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    code, _, err = run(capsys, "say", "Hi.", "--voice", not_audio, "--out", tmp_path / "o.wav")
    assert code == 1
    assert err == (
        f"cached-tts: error: voice clip {not_audio} could not be read as audio; "
        "give a WAV, FLAC, MP3 or OGG file\n"
    )


# -- the cache folder ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["warm", "say"])
def test_an_unusable_cache_folder_is_an_error_before_loading_not_a_memory_fallback(
    command, voice, tmp_path, capsys
):
    afile = tmp_path / "file"
    afile.write_text("x")
    extra = ["Hi.", "--voice", voice, "--out", tmp_path / "o.wav"] if command == "say" else [voice]
    code, out, err = run(capsys, command, *extra, "--cache-dir", afile, "--random-weights")
    assert code == 1
    assert out == ""
    assert f"cannot use the cache folder {afile}" in err
    assert "--no-disk" in err


def test_warm_no_disk_without_remote_is_bad_usage(voice, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["warm", str(voice), "--no-disk"])
    assert exit_.value.code == 2
    assert "--no-disk without --remote stores nothing" in capsys.readouterr().err


# -- the command line's conventions ----------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "ls"],
        ["ls", "-v"],
        ["ls", "--verbose"],
    ],
)
def test_verbose_is_accepted_before_or_after_the_command(argv, tmp_path):
    assert main([*argv, "--cache-dir", str(tmp_path)]) == 0


def test_verbose_after_the_command_logs_the_traceback(tmp_path, capsys, caplog, monkeypatch):
    def broken(_args):
        raise ValueError("boom")

    monkeypatch.setattr("cached_tts._cli.cache_commands.run_ls", broken)
    code, _, err = run(capsys, "ls", "--cache-dir", tmp_path, "-v")
    assert code == 1
    assert err == "cached-tts: error: boom (ValueError)\n"
    assert "Traceback" in caplog.text


def test_version_names_the_package_and_chatterbox(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"cached-tts {__version__} (chatterbox: chatterbox-tts ")


def test_version_names_the_fork_that_ships_chatterbox(tmp_path):
    # A fork installs the same `chatterbox` package under a distribution of its own.
    site = tmp_path / "site"
    (site / "chatterbox").mkdir(parents=True)
    (site / "chatterbox" / "__init__.py").write_text("")
    info = site / "chatterbox_streaming-0.2.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: chatterbox-streaming\nVersion: 0.2.1\n"
    )
    (info / "top_level.txt").write_text("chatterbox\n")
    (info / "RECORD").write_text(
        "chatterbox/__init__.py,,\nchatterbox_streaming-0.2.1.dist-info/METADATA,,\n"
    )
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))

    result = subprocess.run(
        [sys.executable, "-m", "cached_tts", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "chatterbox: chatterbox-streaming 0.2.1," in result.stdout


def test_ctrl_c_while_modules_import_is_one_line_and_exit_130(tmp_path):
    # Ctrl-C lands wherever the user presses it: here, as the cache modules import.
    script = textwrap.dedent(
        f"""
        import sys

        class Interrupt:
            def find_spec(self, name, path=None, target=None):
                if name == "cached_tts._cache.cache":
                    raise KeyboardInterrupt
                return None

        sys.meta_path.insert(0, Interrupt())
        from cached_tts._cli import main
        sys.exit(main(["ls", "--cache-dir", {str(tmp_path)!r}]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=os.environ
    )
    assert result.returncode == 130
    assert result.stderr.strip() == "cached-tts: interrupted"
    assert result.stdout == ""


class FakeTTS:
    """Prepares through its cache like a cached model; no weights."""

    def __init__(self, cache):
        self.cache = cache

    def prepare_conditionals(self, path, exaggeration=0.5):
        key = EntryKey(content=self.cache.content_hash(path), weights="weights:fake", settings=())
        self.cache.get_or_prepare(key, voice_entry, source=path)
        self.exaggeration = exaggeration


def test_demo_removes_its_temporary_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("cached_tts._cli.demo._load", lambda _d, cache, **_: (FakeTTS(cache), True))
    code, out, _ = run(capsys, "demo", "--no-generate", "--random-weights")
    assert code == 0
    assert "cached: memory hit" in out
    assert "1 miss," in out
    assert list(tmp_path.iterdir()) == []
