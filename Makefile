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

# The main job on the local cloud: the seed guide's Azure steps, offline. (Flower itself comes with `start`.)
FZ = $(PY) -m flwrazure
demo: install
	$(FZ) local up
	$(FZ) create-cluster --cloud local --cluster demo --clients 2
	$(FZ) open-ports --cluster demo --source 198.18.0.1
	$(FZ) status --cluster demo
	$(FZ) teardown --cluster demo --yes --purge
	$(FZ) local down

bench: install
	$(PY) -m tests.bench.bench_startup
	$(PY) -m tests.bench.bench_emulator
	$(PY) -m tests.bench.bench_create
	$(PY) -m tests.bench.bench_hosts
