# Berth: `make up` starts everything on this host, `make down` stops it, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up down status test lint bench-foundation clean

up: $(STAMP)
	@scripts/system-deps.sh runtime
	@$(PY) -m berth.ctl up

down:
	@if [ -x $(PY) ]; then $(PY) -m berth.ctl down; else echo "nothing to stop"; fi

status: $(STAMP)
	@$(PY) -m berth.ctl status

test: $(STAMP)
	@scripts/system-deps.sh test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

$(STAMP): pyproject.toml
	@scripts/system-deps.sh runtime
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

clean: down
	rm -rf var $(VENV)
