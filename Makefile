# Two entry points: `make run` (app on the demo region) and `make test` (whole suite).
# Both create .venv on first use and reinstall only when requirements.txt changes.
VENV   ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY      = $(VENV)/bin/python
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT   ?= 8501
# Thin matrix products stall with threaded BLAS on 2 loaded cores; numpy reductions here are memory-bound anyway.
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: run test test-fast bench region chromium clean-venv

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

run: $(VENV)/.installed
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

# Debian's chromium (and CJK fonts, so Chinese renders in screenshots) for the browser tests; Playwright never
# downloads a browser here.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "noto.*cjk"; } || { $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-noto-cjk; }

# Whole suite: the default tests and the ones marked slow. A throwaway PostGIS server is started for the postgis
# tests when Debian's packages can be had (they skip, saying why, when not) and stopped afterwards.
test: $(VENV)/.installed chromium
	@url=$$(bash scripts/postgis_for_tests.sh); \
	LTCI_PG_URL="$${LTCI_PG_URL:-$$url}" $(PY) -m pytest -m "slow or not slow"; rc=$$?; \
	bash scripts/postgis_for_tests.sh --stop; exit $$rc

# Default suite only (no slow marker): the quick loop while developing.
test-fast: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/traveltime.py && $(PY) bench/coverage.py && $(PY) bench/districts.py && $(PY) bench/siting.py

# Rebuild the derived demo files in data/ from ../shared/data/andorra.
region: $(VENV)/.installed
	$(PY) -m geo.build_region

clean-venv:
	rm -rf $(VENV)
