# Berth: `make up` starts everything on this host, `make down` stops it, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUPERVISOR := $(VENV)/bin/berth-supervisor

.PHONY: up down status test lint bench clean

up: $(STAMP) $(SUPERVISOR)
	@scripts/system-deps.sh runtime
	@$(PY) -m berth.ctl up

down:
	@if [ -x $(PY) ]; then $(PY) -m berth.ctl down; else echo "nothing to stop"; fi

status: $(STAMP)
	@$(PY) -m berth.ctl status

test: $(STAMP) $(SUPERVISOR)
	@scripts/system-deps.sh test
	@scripts/build-static.sh
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP) $(SUPERVISOR)
	@scripts/system-deps.sh bench
	$(PY) bench/post_to_exit.py
	$(PY) bench/pull.py
	$(PY) bench/start_latency.py
	$(PY) bench/density.py
	$(PY) bench/logs.py
	$(PY) bench/net.py
	$(PY) bench/api.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

$(STAMP): pyproject.toml
	@scripts/system-deps.sh runtime
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(PY) -m pip install -q --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(PY) -m pip install -q -e '.[dev,postgres]' >> $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

# The per-container supervisor: C, so a container costs the host little memory.
$(SUPERVISOR): workers/engine/native/supervisor.c $(STAMP)
	cc -O2 -Wall -Wextra -Werror -o $@ $<

clean: down
	rm -rf var $(VENV)
