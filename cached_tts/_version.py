"""The version of cached-tts, the same as pyproject.toml's (tests/test_packaging.py checks it)."""

__version__ = "0.1.0"
