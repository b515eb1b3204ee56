# Set-up and entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

SCENARIO ?= default
BUDGET   ?= 20000

.PHONY: demo test test-fast lint format install system-deps clean

# Debian packages some tests need: Chromium (the browser test) and PostgreSQL (store tests).
SYSTEM_PACKAGES := chromium postgresql

# torch is installed first and pinned to the CPU build that ships with these machines;
# the project's range (torch>=2.3,<2.15) is then already satisfied.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[app,dev]'
	touch $(STAMP)

install: $(STAMP)

## system-deps: Debian packages for the browser and PostgreSQL tests (installed when root)
system-deps:
	@if ! command -v chromium >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(SYSTEM_PACKAGES) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "note: without Debian's $(SYSTEM_PACKAGES) the browser and PostgreSQL tests are skipped"; \
	  fi; \
	fi

## demo: the nightly job on the embedded default (SQLite in data/, simulated world)
demo: $(STAMP)
	$(BIN)/growth nightly --scenario $(SCENARIO) --budget $(BUDGET)

## test: lint, then the whole test suite
# The store's tests also run against a throw-away PostgreSQL server when one can be started.
test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@pg_env="$$(scripts/start-postgres.sh)" || pg_env=""; eval "$$pg_env"; \
	  $(BIN)/pytest -n 2 -q; status=$$?; \
	  if [ -n "$${GROWTH_TEST_PG_DIR:-}" ]; then \
	    scripts/start-postgres.sh stop "$$GROWTH_TEST_PG_DIR" >/dev/null 2>&1 || true; \
	  fi; \
	  exit $$status

test-fast: $(STAMP)
	$(BIN)/pytest -n 2 -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data/growth.db data/generated data/cache
