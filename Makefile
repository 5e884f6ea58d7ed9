# The two commands: `make demo` and `make test` (everything, as CI runs it); `make test-fast` is the
# development loop (the tests not marked slow). Both create .venv when it is missing and install
# pinned versions first (requirements/constraints.txt; torch 2.13.0 is PyPI's CUDA build, several GB, which runs on the CPU).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint install clean

demo: $(INSTALLED)
	$(VENV)/bin/pairmill demo

test: lint
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium is not installed: the report's browser test will be skipped"
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Static checks, configured in pyproject.toml: ruff over the tree, mypy over the packages.
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

install: $(INSTALLED)

$(INSTALLED): setup.py requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[dev,faiss,dataflow]'
	touch $(INSTALLED)

clean:
	rm -rf $(VENV) out .demo
