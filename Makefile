# Set-up and the two commands of the README. PYTHON must be 3.12 or newer.
PYTHON ?= $(shell for p in python3.13 python3.12 $$HOME/.pyenv/versions/3.13*/bin/python3 $$HOME/.pyenv/versions/3.12*/bin/python3 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$p; break; }; done)
VENV ?= .venv
BIN = $(VENV)/bin
OUT ?= report

.PHONY: install demo test test-fast bench lint clean browser notebooks

$(BIN)/scale-transfer: pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: need Python >= 3.12 (set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/scale-transfer

demo: install
	$(BIN)/scale-transfer demo --out $(OUT)

# Headless Chromium for tests/test_browser.py (Debian's package; skipped where it cannot install)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
	  echo "note: chromium not installed; the browser test will be skipped"

test: install browser
	$(BIN)/python -m pytest --run-slow

test-fast: install browser
	$(BIN)/python -m pytest

# Execute notebooks/*.ipynb at full size and store them with their outputs (notebooks/README.md)
notebooks: install
	$(BIN)/python tools/run_notebooks.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info test-artifacts
