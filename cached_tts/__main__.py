"""``python -m cached_tts``: the command line."""

from cached_tts._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
