PY ?= python3
export FLWR_TELEMETRY_ENABLED=0
export FLWR_DISABLE_UPDATE_CHECK=1

.PHONY: install test lint demo bench

install:
	$(PY) -m pip install -q -e '.[test]'

test:
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check flwrazure tests

# The main job on the local cloud (needs root for the sandbox VMs): up -> flwr run -> teardown
demo: install
	PY=$(PY) bash examples/demo.sh

bench: install
	$(PY) -m tests.bench.bench_startup
	$(PY) -m tests.bench.bench_emulator
	$(PY) -m tests.bench.bench_create
	$(PY) -m tests.bench.bench_hosts
	$(PY) -m tests.bench.bench_start
