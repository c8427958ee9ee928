"""Entries: one cached preparation, what it holds, and its bytes.

Above the keys. ``schema`` says which fields each kind of model's entry holds,
``entry`` maps an entry to and from Chatterbox's objects, ``copies`` makes the
fresh tensors a hit hands out, and ``format`` turns an entry into verified
safetensors bytes and back. Nothing here knows where an entry is kept.
"""
