"""Keys: what makes two voice preparations the same.

The lowest layer. A key is built from the clip's content hash (``hashing``,
``clip``), the fingerprint of the weights (``fingerprint``), the versions of
the code that prepares (``versions``), the numeric modes and module structure
(``modes``), and the preparation settings (``key``). Nothing here knows how an
entry is stored.
"""
