# The README's two set-up commands are `make demo` and `make test`; CI runs `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo check lint test bench

# After pip, one process loads the librosa modules that compile numba kernels when they load
# (chatterbox loads them to read a voice), which fills numba's cache beside librosa, as pip
# compiles .pyc files: until one process has, every process that loads them compiles them,
# ~15 s of CPU.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -W ignore -c 'import chatterbox.tts, librosa.core.audio, librosa.core.pitch, librosa.util.utils'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m cached_tts demo

# The quick checks (seconds): style, and the layer contract (pyproject.toml [tool.importlinter]).
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

lint: check
	$(BIN)/mypy

# The suite, with mypy beside it rather than before it: mypy takes ~14 s of one core from a
# cold cache, and the suite leaves the cores idle part of the time (waiting on the processes
# its tests start). mypy's report is printed after pytest's; either failing fails make test.
# Two workers (pytest-xdist); --dist loadfile keeps each file's module fixtures on one worker,
# and a crashed worker ends the run rather than hang it. The tests marked ci_only (building and
# installing the wheel, the benchmark) are left to CI: .ci/run sets MARKS= to run every test.
MARKS ?= not ci_only
test: check
	$(BIN)/mypy > $(VENV)/mypy.log 2>&1 & mypy=$$!; \
	$(BIN)/python -m pytest -n 2 --dist loadfile --max-worker-restart 0 -m "$(MARKS)" --durations=15; \
	tests=$$?; wait $$mypy; types=$$?; echo "mypy:"; cat $(VENV)/mypy.log; \
	[ $$tests -eq 0 ] && [ $$types -eq 0 ]

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py --checkpoint
