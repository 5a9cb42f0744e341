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

# The main job on the local cloud. Today: start the offline cloud, show how to reach it, stop it.
demo: install
	$(PY) -m flwrazure local up
	$(PY) -m flwrazure local status
	$(PY) -m tests.bench.demo_sdk
	$(PY) -m flwrazure local down

bench: install
	$(PY) -m tests.bench.bench_startup
	$(PY) -m tests.bench.bench_emulator
	$(PY) -m tests.bench.bench_create
