"""The harness that ``benchmarks/bench.py`` runs: a checkout's tool, not shipped in the wheel.

* :mod:`.options`: the command line's options and the usage errors;
* :mod:`.timing`: how one call is timed, and the state a run shares;
* :mod:`.cases`: the models, the clip, and the cases every run times;
* :mod:`.checkpoint`: the cases of models loaded from a checkpoint (``--checkpoint``);
* :mod:`.report`: the machine, the table and the JSON figures.
"""
