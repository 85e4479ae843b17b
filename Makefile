# The two commands a new user needs: `make demo` and `make test`. Each creates and fills .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB ?= sqlite+aiosqlite:///$(CURDIR)/var/demo.db

.DEFAULT_GOAL := help
.PHONY: help demo test lint audit lock check migrate clean

help:
	@echo "make demo     ticketbot + the WeCom/DingTalk emulator and its web chat page, on embedded SQLite (var/demo.db)"
	@echo "make test     run the whole test suite (SQLite and PostgreSQL at 127.0.0.1:5432)"
	@echo "make lint     ruff, mypy --strict and the import-linter contracts"
	@echo "make audit    known vulnerabilities of the locked versions (requirements.lock; skipped, saying so, offline)"
	@echo "make lock     re-resolve every dependency to its newest allowed version and rewrite requirements.lock"
	@echo "make check    validate the config directory (TICKETBOT_CONFIG_DIR, default config/)"
	@echo "make clean    remove .venv, var/ and caches"

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ticketbot needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' -c requirements.lock
	@touch $(STAMP)

demo: $(STAMP)
	@mkdir -p var
	TICKETBOT_DATABASE_URL="$${TICKETBOT_DATABASE_URL:-$(DEMO_DB)}" $(BIN)/ticketbot demo

test: $(STAMP)
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-chromium.sh
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

audit: $(STAMP)
	$(BIN)/python scripts/audit_deps.py

# The upgrade path: a fresh virtualenv resolved without the lock, frozen into it; then make test.
lock:
	rm -rf $(VENV).lock
	$(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV).lock/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@{ echo "# Every resolved version of ticketbot's runtime and dev dependencies (pip constraints)."; \
	  echo "# make installs with -c requirements.lock; make lock rewrites it (README: Development)."; \
	  $(VENV).lock/bin/python -m pip freeze --exclude-editable | grep -vi '^ticketbot'; } > requirements.lock
	rm -rf $(VENV).lock
	@echo "requirements.lock rewritten: review git diff requirements.lock, then make test"

check: $(STAMP)
	$(BIN)/ticketbot check

migrate: $(STAMP)
	$(BIN)/ticketbot migrate

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache *.egg-info
