"""Wrapping: a cache put in front of Chatterbox's classes.

Above the cache. ``wrappers`` holds the ``wrapt`` wrappers of
``prepare_conditionals`` and ``generate``; ``binding`` binds a call to its
arguments, ``voice`` finds or prepares one call's voice, ``loaders`` wraps what
makes a model (``__init__``, ``from_local``, ``from_pretrained``). ``models``
is the public decorator and the four cached classes, ``patching`` patches
chatterbox's own classes on import (:func:`cached_tts.enable`), ``warm``
prepares voices ahead of time, and ``disable_switch`` reads
``$CACHED_TTS_DISABLE``. A new model class is one entry in ``models``.
"""
