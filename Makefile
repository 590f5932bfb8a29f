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

# Every Python test (tests/browser included), then the front end's `node --test` tests;
# fails if either fails (both always run).
test: $(VENV)/.installed $(CHROMIUM) $(NODE)
	status=0; \
	$(VENV)/bin/python -m pytest || status=$$?; \
	$(NODE) --test tests/frontend/ || status=$$?; \
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
	$(VENV)/bin/python bench/evolve.py

# The embedded diff model (evolution/models/diff-sodarace): GP corpus runs, tokenizer, ~95 min of training.
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
	$(VENV)/bin/python bench/pipeline.py
