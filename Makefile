# Each target does its own set-up: a virtualenv in .venv with harbour
# installed (editable) and its test tools.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo

.PHONY: all test demo bench soak clean

all: test

$(STAMP): setup.py pyproject.toml
	./.ci/bootstrap "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

## Run every test: lint (ruff) and types (mypy with the zope plugin, over
## harbour and benchmarks), then the package's unit and integration tests
## and the system tests that start real twistd, redis-server and simulator
## processes.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/trial --jobs=2 harbour tests

## Mirror the built-in OASIS simulator with an embedded Redis, logging
## progress; edit $(DEMO_DIR)/config/*.toml while it runs.
demo: $(STAMP)
	mkdir -p $(DEMO_DIR)/config
	cp -n examples/demo/*.toml $(DEMO_DIR)/config/ 2>/dev/null || true
	@echo "harbour demo: files land in $(DEMO_DIR)/data/reports; edit $(DEMO_DIR)/config/*.toml"
	@echo "and watch it reconfigure; '.venv/bin/harbourctl --token-file $(DEMO_DIR)/data/amp.token status'"
	@echo "in another terminal; Ctrl-C stops. Each file also becomes Parquet in $(DEMO_DIR)/data/tables; ask it:"
	@echo "  .venv/bin/harbourctl query --data-dir $(DEMO_DIR)/data \"select location, avg(lmp) from lmp_dam_wide group by 1\""
	$(BIN)/twistd --nodaemon --pidfile= harbour --demo \
	    --config-dir $(DEMO_DIR)/config --data-dir $(DEMO_DIR)/data

clean:
	rm -rf $(VENV) $(DEMO_DIR) _trial_temp* *.egg-info build

## Run the benchmarks and print one side-by-side table
## (BENCH_ARGS=--quick: each once, smaller).
bench: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	./.ci/install-peers || true
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

## Mirror the simulator for SOAK_SECONDS (default 600) while injecting
## faults, then audit: nothing lost, nothing partial, nothing twice.
SOAK_SECONDS ?= 600
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak --seconds $(SOAK_SECONDS)
