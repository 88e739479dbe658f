# Two commands do all the set-up: `make run` (the essay's system, default population)
# and `make test`. Each creates .venv when it is missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

ARGS ?=

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,bench,fast]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/metricpower run $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)
	$(BIN)/python benchmarks/ensemble.py $(filter --quick,$(ARGS))

clean:
	rm -rf $(VENV) runs
