# elmweb: `make run` starts the lab, `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

PY ?= python3.11
VENV = .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test bench-sim clean

install: $(VENV)/.installed

# Created (or refreshed) only when requirements.txt is newer than the stamp.
$(VENV)/.installed: requirements.txt
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py collectstatic --noinput --verbosity 0
	exec $(VENV)/bin/python -m elmweb.launch --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest
# Front-end tests go here once tests/frontend exists:
#	node --test tests/frontend

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

.PHONY: bench-mutation
bench-mutation: $(VENV)/.installed
	$(VENV)/bin/python bench/mutation.py $(ARGS)

.PHONY: bench-pipeline
bench-pipeline: $(VENV)/.installed
	$(VENV)/bin/python bench/pipeline.py
