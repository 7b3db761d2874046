# The two commands: `make run` and `make test`. Each sets itself up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
PIP_VERSION := 26.3

.PHONY: run test bench setup migrate clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	# --no-deps: the requirement files are complete locks (see requirements.txt).
	$(PY) -m pip install --quiet --no-deps -r requirements-dev.txt
	touch $@

setup: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py ensure_roles
	$(PY) manage.py ensure_admin
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py serve

test: $(STAMP)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks.detector $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
