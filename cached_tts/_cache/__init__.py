"""The cache: the order of the tiers behind one key, and single flight.

Above the tiers. ``cache`` holds :class:`ConditionalCache`, which asks the
memory tier, then the disk tier, then each shared tier, and prepares a voice
once however many callers want it (``singleflight``). ``stats`` is what a cache
has done and how that reads, ``forget`` erases a voice from every tier, and
``display`` is how sizes and a cache's entries read to a person.
"""
