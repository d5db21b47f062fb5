# Every target sets up what it needs: `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv browser demo test check lint serve bench clean fuzz soak bench-voices

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[server,test,scale,vace,voices]'
# mediapipe 0.10.21 is the last with the bundled legacy models; --no-deps keeps jax out (see pyproject.toml).
	$(BIN)/python -m pip install -q --no-deps mediapipe==0.10.21
	touch $(STAMP)

demo: venv
	$(BIN)/python scripts/demo.py

# The web console's browser tests drive Debian's Chromium: install it when missing and we are
# root; otherwise say so (the tests then skip, except under CI=true where they fail).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser tests will skip"; \
	  else echo "note: chromium is missing (as root: apt-get install chromium); the browser tests will skip"; fi; }

# Everything: lint, then the whole suite (live servers, renders, the browser).
test: lint browser
	$(BIN)/python -m pytest -q

# The quick loop: lint, then the tests marked neither slow, e2e nor browser (pyproject.toml markers).
check: lint
	$(BIN)/python -m pytest -q -m "not slow and not e2e and not browser"

# ruff, the type checker and the import contracts (docs/CONTRIBUTING.md).
lint: venv
	$(BIN)/ruff check src tests scripts bench
	PYTHONPATH=src $(BIN)/mypy
	PYTHONPATH=src $(BIN)/lint-imports

# schemathesis against every dialect's OpenAPI document on an API-only server: 100 generated requests per
# operation and generation mode (tests/api/test_fuzz.py is the short run); non-zero on any finding.
fuzz: venv
	$(BIN)/python scripts/fuzz.py --examples 100

serve: venv
	$(BIN)/openr2v serve --host 127.0.0.1 --port 8000 --data-dir .data

# 30 minutes of mixed load on the embedded default; PASS needs flat RSS, fds and threads (bench/README.md).
soak: venv
	$(BIN)/python bench/soak.py --minutes 30

# The speech engine comparison (docs/voices.md). Debian's candidates are installed when missing and we are
# root (the product needs none of them: its voice comes from PyPI, see the `voices` extra).
bench-voices: venv
	@command -v flite >/dev/null 2>&1 && command -v text2wave >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq flite festival \
	      festvox-us-slt-hts festvox-kallpc16k >/dev/null) || echo "warning: Debian's voices not installed"; \
	  else echo "note: flite/festival missing (as root: apt-get install flite festival festvox-us-slt-hts)"; fi; }
	$(BIN)/python bench/voices.py

clean:
	rm -rf $(VENV) .data out
