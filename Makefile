# The Recipe: `make lab` opens the course, `make test` runs every test. Both build .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8888
LAB_ARGS ?=
# TORCH=cpu installs PyTorch's CPU-only build from its wheel index (about 1 GB instead of the
# default CUDA build's 6 GB of nvidia libraries; needs that index reachable). Any other flavour of
# https://download.pytorch.org/whl/ works the same (TORCH=cu121...). Empty: torch from PyPI, as
# pyproject.toml says, which also works from a PyPI mirror or cache.
TORCH ?=
TORCH_INDEX := https://download.pytorch.org/whl/$(TORCH)
# One stamp per flavour, so asking for another one installs it (start from a fresh .venv to drop
# the other build's libraries).
STAMP := $(VENV)/.installed$(if $(TORCH),-$(TORCH),)

.PHONY: ci-tools lab test test-fast lint format release grade bench bench-final bench-grading bench-learner clean-grading

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install --quiet --index-url $(TORCH_INDEX) "torch>=2.4" "torchvision>=0.19",)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## Open the course in JupyterLab (student notebooks, nbgrader and the course's Validate on).
# `course lab` is the same command on every install route (see course_utils/jupyter_setup.py).
lab: $(STAMP)
	$(BIN)/course lab --port=$(PORT) $(LAB_ARGS)

## Lint, then the whole test suite (unit tests, notebook execution, release drift, autograding),
## on two pytest-xdist workers: tests that share an expensive fixture stay on one worker, slow tests
## start first (tests/conftest.py); the 25 slowest are listed at the end, for CI's time budget.
PYTEST_WORKERS ?= 2
test: $(STAMP) lint ci-tools
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=25

# The browser test needs Chromium and grading's sandbox needs bubblewrap (Debian packages). CI
# (CI=true, as root) installs what is missing; elsewhere those tests are skipped with the reason,
# and `course doctor` says how to install them.
ci-tools:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	if [ "$$CI" = "true" ] && [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
			>/dev/null || echo "could not install$$missing: their tests will be skipped"; \
	fi

test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerate notebooks/ from solutions/.
release: $(STAMP)
	$(BIN)/course release

## Autograde a folder of submissions: make grade SUBMISSIONS=path/to/folder [JOBS=4]
JOBS ?= 1
grade: $(STAMP)
	$(BIN)/course grade $(SUBMISSIONS) --jobs $(JOBS)

## Time every solutions notebook, the reference ops, the group-norm routes and every check (visible and
## hidden, warm); rewrite benchmarks/*.md; print the notebooks' code-cell lengths against the readability goal.
bench: $(STAMP)
	$(BIN)/python benchmarks/cell_stats.py
	$(BIN)/python benchmarks/bench_notebooks.py
	$(BIN)/python benchmarks/bench_ops.py
	$(BIN)/python benchmarks/bench_group_norm_routes.py
	$(BIN)/python benchmarks/bench_checks.py

## Train the anchor (PyTorch's MNIST example) and the course's final model, 3 seeds each, one
## thread per run; writes benchmarks/final_model.md and benchmarks/results/final_model.json, which
## stage 6 loads (long: about 15 CPU-minutes).
bench-final: $(STAMP)
	$(BIN)/python benchmarks/bench_final_model.py

## Time `course grade` on a synthetic class, --jobs 1 against --jobs 2 (about 10 minutes).
bench-grading: $(STAMP)
	$(BIN)/python benchmarks/bench_grading.py

## Time what a learner waits for: course doctor, course check NN and Validate per stage (~10 minutes).
bench-learner: $(STAMP)
	$(BIN)/python benchmarks/bench_learner.py

clean-grading:
	rm -rf _grading
