"""Tiers: where entries are kept, each behind the same few verbs.

Above the entries. ``base`` is what every shared tier does (``SharedTier``,
the interface the cache and the command line call); ``memory`` is the
in-process LRU; ``disk/``, ``redis/`` and ``objectstore/`` are one folder per
tier that keeps files or talks to a server; ``shared`` opens the shared tiers
from URLs. ``health``, ``deadline``, ``open_once`` and ``checks`` are the policy
every tier shares: when a failing tier is skipped, calls given a deadline, a
client opened once per process, settings checked when built; ``stats`` is what
one shared tier has done. A new shared tier is one more folder (or module) here
with a subclass of ``base.SharedTier``, and one line in ``shared``.
"""
