"""The object-store tier: entries shared through a bucket (S3, GCS, Azure) or a folder, via fsspec.

``tier`` is the tier (``ObjectStoreTier``), ``opening`` opens one from a URL,
and ``calls`` is how it calls a store: deadlines on fsspec's event loop, the
create that never overwrites, and what the store's errors mean.
"""
