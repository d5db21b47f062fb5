# Every target sets up what it needs: `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint serve bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: venv
	$(BIN)/python scripts/demo.py

test: venv
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check src tests scripts bench

serve: venv
	$(BIN)/openr2v serve --host 127.0.0.1 --port 8000 --data-dir .data

clean:
	rm -rf $(VENV) .data out
