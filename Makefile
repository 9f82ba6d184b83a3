# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs the dependencies at the exact versions of constraints.txt
# (torch==2.13.0, the CPU build from the local wheel cache); pyproject.toml holds the ranges.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/pip install -q -c constraints.txt -e ".[test,hf]"
	touch $(STAMP)

.PHONY: venv demo test test-fast lint bench constraints clean
venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/misalignlab pilot --out runs/demo

test: lint
	$(BIN)/python -m pytest

# the inner loop: everything but the end-to-end runs (marked slow)
test-fast: lint
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/sweep_speed.py

# re-pin after changing a range in pyproject.toml and upgrading .venv (pip install -U -e ".[test,hf]"), tests passing
constraints:
	$(BIN)/python .ci/pin_constraints.py > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt

clean:
	rm -rf $(VENV) runs
