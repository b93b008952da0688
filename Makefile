# Everything a fresh machine needs (Python 3.11 + make): `make lesson` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export FLWR_TELEMETRY_ENABLED := 0
export RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO := 0

.PHONY: install lesson lint test browser docs clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Run the lesson notebook headless into build/ and print what it measured.
lesson: $(STAMP)
	mkdir -p build
	$(BIN)/papermill notebooks/L5_Bandwidth.ipynb build/L5_Bandwidth.ipynb --cwd notebooks -k python3
	$(BIN)/fedbandwidth report build/L5/ledger.csv

# The layering (import-linter contracts), declared dependencies (deptry), lint and format (ruff); see pyproject.toml.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/deptry .
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

# Debian's Chromium for the browser tests (pytest -m browser: JupyterLab driven by Playwright); needs root.
# Playwright's own browser download is not used (nor reachable here); `make test` skips those tests without it.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Regenerate the README's figure with the project's own code.
docs: $(STAMP) browser
	$(BIN)/fedbandwidth simulate --supernodes 2 --rounds 3 --plot --out build/docs
	cp build/docs/bandwidth_per_round.png docs/bandwidth_per_round.png
	$(BIN)/python -m pytest -m browser -k explorer tests/test_browser.py
	cp build/browser/explorer.png docs/explorer.png

clean:
	rm -rf build
