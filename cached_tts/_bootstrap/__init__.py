"""The folder that ``cached-tts run`` puts first on ``$PYTHONPATH``.

It holds one module, :mod:`sitecustomize`, which Python imports at the start of
every process that has this folder on its path (see that module). It is a
package only so that it ships in the wheel; nothing imports it as
``cached_tts._bootstrap``.
"""
