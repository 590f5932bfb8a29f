# elmweb: `make run` starts the lab, `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

PY ?= python3.11
VENV = .venv
HOST ?= 127.0.0.1
PORT ?= 8000

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; pip's
# playwright package brings the driver only, and no browser is ever downloaded.
CHROMIUM = /usr/bin/chromium
# Node runs the front end's pure-module tests (`node --test`); Debian's nodejs is enough.
NODE = /usr/bin/node
# apt-get as root, else through sudo where there is one (empty: try as we are).
SUDO := $(shell [ "$$(id -u)" = 0 ] || { command -v sudo >/dev/null && echo sudo; })

.PHONY: install run test bench-sim clean

# --- Scaled out on this machine (`make run-scaled`, `make test-scaled`) ----------------------
# PostgreSQL and Redis from Debian's packages, each a private instance kept under SCALED_DIR,
# bound to 127.0.0.1 and started as this user (PostgreSQL as `postgres` when we are root):
# deploy/servers.sh. Nothing system-wide is configured. Ports and pool sizes can be overridden:
# `make run-scaled PG_PORT=5544 SIM_CONCURRENCY=4`.
SERVERS = bash deploy/servers.sh
SCALED_DIR ?= var/scaled
PG_PORT ?= 55432
REDIS_PORT ?= 56379
# One worker per queue, each with its own processes: `llm` loads the language model in each
# process (and batches prompts), `sim` steps GP runs and records replays (each step forks
# EVAL_WORKERS evaluators), `train` runs stage-2/3 training jobs, one at a time here.
LLM_CONCURRENCY ?= 1
SIM_CONCURRENCY ?= 2
TRAIN_CONCURRENCY ?= 1

install: $(VENV)/.installed $(CHROMIUM) $(NODE)

# Created (or refreshed) only when requirements.txt is newer than the stamp.
$(VENV)/.installed: requirements.txt
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	touch $@

# Installed only when missing.
$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation
	test -x $@

run: $(VENV)/.installed
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py collectstatic --noinput --verbosity 0
	exec $(VENV)/bin/python -m elmweb.launch --host $(HOST) --port $(PORT)

# Installed only when missing.
$(NODE):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs
	test -x $@

# Every Python test (tests/browser included), then the front end's `node --test` tests, then
# the integration tests again on PostgreSQL + Redis (`make test-scaled`); fails if any fails
# (all always run).
test: $(VENV)/.installed $(CHROMIUM) $(NODE) install-servers
	status=0; \
	$(VENV)/bin/python -m pytest || status=$$?; \
	$(NODE) --test tests/frontend/ || status=$$?; \
	$(MAKE) --no-print-directory test-scaled || status=$$?; \
	exit $$status

bench-sim: $(VENV)/.installed
	$(VENV)/bin/python bench/sim.py

clean:
	rm -rf var/

.PHONY: bench-ranges
bench-ranges: $(VENV)/.installed
	$(VENV)/bin/python bench/descriptor_ranges.py

.PHONY: bench-sandbox
bench-sandbox: $(VENV)/.installed
	$(VENV)/bin/python bench/sandbox.py

.PHONY: bench-evolve
bench-evolve: $(VENV)/.installed
	$(VENV)/bin/python bench/evolve.py $(ARGS)

# The embedded diff model (evolution/models/diff-sodarace): GP corpus runs, tokenizer, training
# (6.5 min with CUDA, the committed model's recipe; ~95 min on 2 CPU cores).
.PHONY: train-mutator
train-mutator: $(VENV)/.installed
	$(VENV)/bin/python -m evolution train-mutator $(ARGS)

.PHONY: bench-stage2
bench-stage2: $(VENV)/.installed
	$(VENV)/bin/python bench/stage2.py $(ARGS)

# Needs a stage-2 model: bench/out/stage2/model from `make bench-stage2`, or ARGS="--model DIR".
.PHONY: bench-stage3
bench-stage3: $(VENV)/.installed
	$(VENV)/bin/python bench/stage3.py $(ARGS)

.PHONY: bench-mutation
bench-mutation: $(VENV)/.installed
	$(VENV)/bin/python bench/mutation.py $(ARGS)

.PHONY: bench-pipeline
bench-pipeline: $(VENV)/.installed
	$(VENV)/bin/python bench/pipeline.py $(ARGS)

# Two TCP ports nothing listens on (the kernel picks them), for the test servers.
FREE_PORTS = import socket; s = [socket.socket() for _ in range(2)]; [x.bind(("127.0.0.1", 0)) for x in s]; print(*(x.getsockname()[1] for x in s))
# Shell lines that start PostgreSQL + Redis in a throw-away folder var/$(1).XXXXXX on free ports,
# deleted when the recipe's shell exits, and export the three URLs that point the lab at them.
THROWAWAY_SERVERS = mkdir -p var; dir=$$(mktemp -d $(CURDIR)/var/$(1).XXXXXX); trap '$(SERVERS) purge "$$dir"' EXIT; \
	chmod 755 "$$dir"; ports=$$($(VENV)/bin/python -c '$(FREE_PORTS)'); read -r pg_port redis_port <<<"$$ports"; \
	$(SERVERS) up "$$dir" $$pg_port $$redis_port; servers=$$($(SERVERS) env "$$dir" $$pg_port $$redis_port); eval "$$servers"

# Load, faults and fuzz on PostgreSQL + Redis of a throw-away folder on free ports (as test-scaled),
# deleted afterwards: bench/scale.py (about 5 min on two cores); e.g. ARGS="--parts fuzz".
.PHONY: bench-scale
bench-scale: $(VENV)/.installed install-servers
	$(call THROWAWAY_SERVERS,bench-servers); \
	$(VENV)/bin/python bench/scale.py $(ARGS)

# PostgreSQL (the `postgresql` package brings /usr/lib/postgresql/<version>/bin) and Redis,
# installed only when missing.
.PHONY: install-servers
install-servers:
	if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || ! command -v redis-server >/dev/null; then \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql redis-server; \
	fi

# Start (creating on first use) or stop the private PostgreSQL + Redis of SCALED_DIR; `servers-up`
# prints the variables that point the lab at them (eval them to use the servers by hand).
.PHONY: servers-up servers-down
servers-up: install-servers
	$(SERVERS) up $(SCALED_DIR) $(PG_PORT) $(REDIS_PORT)
	$(SERVERS) env $(SCALED_DIR) $(PG_PORT) $(REDIS_PORT)
servers-down:
	$(SERVERS) down $(SCALED_DIR)

# The lab on PostgreSQL + Redis with one worker pool per queue; Ctrl-C stops the lab, then the
# servers (their data stays in SCALED_DIR; `make clean` deletes it).
.PHONY: run-scaled
run-scaled: $(VENV)/.installed install-servers
	trap '$(SERVERS) down $(SCALED_DIR)' EXIT; \
	$(SERVERS) up $(SCALED_DIR) $(PG_PORT) $(REDIS_PORT); \
	servers=$$($(SERVERS) env $(SCALED_DIR) $(PG_PORT) $(REDIS_PORT)); \
	eval "$$servers"; \
	$(VENV)/bin/python manage.py migrate --noinput; \
	$(VENV)/bin/python manage.py collectstatic --noinput --verbosity 0; \
	$(VENV)/bin/python -m elmweb.launch --host $(HOST) --port $(PORT) --pool llm=$(LLM_CONCURRENCY) \
	  --pool sim,celery=$(SIM_CONCURRENCY) --pool train=$(TRAIN_CONCURRENCY)

# The integration tests (marker `integration`: real workers, daphne and its WebSockets, the API)
# on PostgreSQL + Redis of a throw-away folder on free ports, deleted afterwards. `make test`
# runs it after the whole suite on the embedded defaults. PYTEST_ARGS adds pytest arguments.
.PHONY: test-scaled
test-scaled: $(VENV)/.installed install-servers
	$(call THROWAWAY_SERVERS,test-servers); \
	ELMWEB_SCALED_TESTS=1 $(VENV)/bin/python -m pytest -m integration $(PYTEST_ARGS)
