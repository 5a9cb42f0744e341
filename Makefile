PY ?= python3
export FLWR_TELEMETRY_ENABLED=0
export FLWR_DISABLE_UPDATE_CHECK=1

.PHONY: install test test-floors lint demo bench

# pip install -e only when needed (this clone not installed, or a dependency missing or outside pyproject's range):
# `make test` and `make demo` depend on it and still work offline once installed
install:
	@$(PY) .ci/installed.py || $(PY) -m pip install -q -e '.[test]'

# as root, installs what the sandbox VMs need first (apt, once); without root their tests are skipped, the rest run.
# Two pytest-xdist workers: the tests that boot sandbox VMs (one such local cloud per machine) run one after another
# on one of them while the other runs everything else (tests/conftest.py, VMS); the suite waits on VMs and SSH
# far more than it computes, so the VM chain then sets the wall time. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: install
	$(PY) -m flwrazure local prepare --if-root
	$(PY) -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadgroup

# The version floors in pyproject.toml, proven: the lowest allowed version of every runtime dependency in a second
# venv (it sees this one's other packages), then the tests that drive those libraries (about a minute)
FLOORS_VENV ?= /tmp/flwrazure-floors
FLOOR_TESTS = tests/unit tests/integration/test_identity.py \
	"tests/integration/test_cluster.py::test_create_cluster_builds_the_seed_layout[2]" \
	tests/integration/test_cluster.py::test_rerun_create_and_open_ports_write_nothing \
	tests/integration/test_cluster.py::test_status_shows_power_and_addresses \
	tests/integration/test_cluster.py::test_teardown_full_cluster_leaves_nothing \
	tests/integration/test_cluster.py::test_quota_and_sku_preflight_create_nothing \
	tests/integration/test_cluster.py::test_failed_vm_names_resource_code_and_next_step_then_rerun_converges \
	"tests/integration/test_cluster.py::test_image_and_disk_follow_the_vm_size[Standard_D2ps_v5-server-arm64-Premium_LRS]" \
	tests/integration/test_credentials.py::test_one_az_run_for_every_first_request_and_the_prefetched_token_is_used
test-floors:
	rm -rf $(FLOORS_VENV) && $(PY) -m venv --system-site-packages $(FLOORS_VENV)
	$(PY) .ci/floors.py > $(FLOORS_VENV)/floors.txt
	$(FLOORS_VENV)/bin/pip install -q --no-warn-conflicts -r $(FLOORS_VENV)/floors.txt
	$(FLOORS_VENV)/bin/python -c "import importlib.metadata as m; print('floors:', *[f'{n}=={m.version(n)}' for n in \
		open('$(FLOORS_VENV)/floors.txt').read().replace('==', ' ').split()[::2]])"
	cd $(CURDIR) && $(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider $(FLOOR_TESTS)

lint:
	$(PY) -m ruff check flwrazure tests

# The main job on the local cloud (needs root for the sandbox VMs): prepare (apt, once) -> up -> flwr run -> teardown
demo: install
	$(PY) -m flwrazure local prepare
	PY=$(PY) bash examples/demo.sh

bench: install
	$(PY) -m flwrazure local prepare
	$(PY) -m tests.bench.bench_startup
	$(PY) -m tests.bench.bench_emulator
	$(PY) -m tests.bench.bench_create
	$(PY) -m tests.bench.bench_hosts
	$(PY) -m tests.bench.bench_start
	$(PY) -m tests.bench.bench_day2
	$(PY) -m tests.bench.bench_up_azure
