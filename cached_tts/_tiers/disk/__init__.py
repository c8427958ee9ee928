"""The disk tier: one verified safetensors file per entry in a folder, bounded in bytes.

``tier`` is what the cache calls (``DiskTier``: get, put, lease, used; never
raising), ``store`` reads and writes entries (``DiskStore``), built on
``eviction`` (the byte bound and tidying), ``locks`` (the per-key lock files that
make one process prepare a voice) and ``folder`` (the layout and listing).
``touch`` marks memory hits as used, away from the hit.
"""
