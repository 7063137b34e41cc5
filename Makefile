# Every target installs what it needs into .venv on first use (and again when
# pyproject.toml or constraints.txt change).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# NumPy (OpenBLAS) and torch in one process fight over the cores when both run threaded:
# OpenBLAS's idle workers spin while torch works. Tests and the parity harness alternate the
# two constantly, so each side gets one thread there; the benchmark sets its own.
SINGLE_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: install walls test container-test parity lint bench demo figures clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The grading walls need bubblewrap and libseccomp's Python bindings (system packages):
# installed with apt where missing and this runs as root (as on this project's machines and
# CI); elsewhere the command is shown.
WALL_PACKAGES := bubblewrap python3-seccomp util-linux
walls:
	@if ! command -v bwrap >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import seccomp' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(WALL_PACKAGES); \
	  else \
	    echo "the grading walls need: sudo apt-get install $(WALL_PACKAGES)" >&2; exit 1; \
	  fi; \
	fi

test: $(STAMP) walls
	$(SINGLE_THREAD) $(BIN)/python -m pytest -q -n 2
	$(MAKE) lint

# The grader in a real Docker container, as Gradescope and PrairieLearn run it (see
# docs/grading.md): installs docker.io and debootstrap with apt where missing, starts dockerd
# where none answers, and fails, saying why, where Docker cannot start. Needs root.
container-test: $(STAMP)
	$(BIN)/python container/run.py

parity: $(STAMP)
	$(SINGLE_THREAD) $(BIN)/python -m parity --profile ci

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where a machine sets them, pin OpenBLAS to older
# kernels (a guard for old OpenBLAS builds); they slow a current NumPy, so the benchmark
# unsets them for itself alone and its header names the kernel that then runs. Tests and
# the parity harness keep the machine's settings.
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m bench $(BENCH_ARGS)

demo: $(STAMP)
	$(BIN)/python -m examples.sequence_regression
	$(BIN)/python -m examples.char_lm
	$(BIN)/python -m examples.gradient_flow
	$(MAKE) figures

# The study guide's figures (docs/study/figures/*.png), all drawn by docs/study/figures.py.
figures: $(STAMP)
	$(SINGLE_THREAD) $(BIN)/python docs/study/figures.py --out docs/study/figures

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
