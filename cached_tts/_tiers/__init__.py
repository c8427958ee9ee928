"""Tiers: where entries are kept, each behind the same few verbs.

Above the entries. ``base`` is what every shared tier does (the interface the
cache and the command line call), ``memory`` the in-process LRU, ``disk`` the
verified folder (with ``touch``, which refreshes a hit's last use away from the
hit), ``redis`` and ``objectstore`` the fleet's shared tiers, and ``shared``
opens them from URLs. ``health``, ``deadline``, ``open_once`` and ``checks``
are the policy every tier shares: when a failing tier is skipped, calls given a
deadline, a client opened once per process, and settings checked when built.
A new shared tier is one module here that implements ``base.SharedTier``.
"""
