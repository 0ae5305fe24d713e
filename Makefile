# Two entry points: `make demo` (a real search on the bundled digits data)
# and `make test` (everything CI runs). Both create .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# MPI test sizes: 1 to 4 ranks and one oversubscribed size (6 ranks on 2 cores).
MPI_SIZES ?= 1 2 3 4 6
MPI_TEST_TIMEOUT ?= 180

.PHONY: setup demo test test-unit test-mpi test-slurm test-hosts lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[mpich,test]"
	touch $@

demo: setup
	$(BIN)/mpiexec -n 3 $(BIN)/mpisearch run examples/digits_svc.toml --out results/demo --force
	$(BIN)/mpisearch report results/demo

lint: setup
	$(BIN)/ruff check .

test-unit: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not multihost"

# Each size runs the SPMD tests under a per-test timeout and an outer
# timeout, so a deadlock fails in minutes instead of hanging CI.
test-mpi: setup
	set -e; for n in $(MPI_SIZES); do \
	  echo "== MPI tests on $$n ranks"; \
	  timeout $(MPI_TEST_TIMEOUT) $(BIN)/mpiexec -n $$n $(BIN)/python -m mpi4py -m pytest --with-mpi \
	    -q -p no:cacheprovider --timeout=120 -m "not slow" tests/test_mpi.py tests/test_mpi_data.py tests/test_mpi_dropin.py tests/test_mpi_reuse.py; \
	done
	# one >2 GiB broadcast, through 256 MiB chunks into a node-shared window
	timeout 300 $(BIN)/mpiexec -n 3 $(BIN)/python -m mpi4py -m pytest --with-mpi \
	  -q -p no:cacheprovider --timeout=240 -m slow tests/test_mpi_data.py

test-slurm: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout=400 tests/test_slurm.py

# Multi-host tests (tests/test_multihost.py) on three network-namespace test hosts with
# sshd (tests/testhosts.py): root only; elsewhere skipped with the reason, unless
# MPISEARCH_REQUIRE_HOSTS=1 makes that a failure. Whatever happens, the test hosts
# (msh-* namespaces, bridge, sshd processes, /tmp/msh-hosts-*) are removed afterwards.
test-hosts: setup
	status=0; timeout 420 $(BIN)/python -m pytest -q -p no:cacheprovider --timeout=240 -m multihost \
	  tests/test_multihost.py || status=$$?; \
	$(BIN)/python tests/testhosts.py down >/dev/null 2>&1 || true; exit $$status

test: lint test-unit test-mpi test-hosts

bench: setup
	$(BIN)/python benchmarks/bench_vs_sklearn.py

clean:
	rm -rf $(VENV) results build *.egg-info
