# The README's two set-up commands are `make demo` and `make test`; CI runs `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m cached_tts demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two workers (pytest-xdist); --dist loadfile keeps each file's module fixtures on one worker,
# and a crashed worker ends the run rather than hang it. The tests marked ci_only (building and
# installing the wheel, the benchmark) are left to CI: .ci/run sets MARKS= to run every test.
MARKS ?= not ci_only
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile --max-worker-restart 0 -m "$(MARKS)" --durations=15

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py --checkpoint
