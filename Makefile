# `make check` is exactly what CI runs after installing (see .ci/run).
PYTHON ?= python3

.PHONY: check lint typecheck test install

install:
	$(PYTHON) -m pip install -e '.[test]'

lint:
	$(PYTHON) -m ruff check gossip tests tools examples
	$(PYTHON) -m ruff format --check gossip tests examples

typecheck:
	$(PYTHON) -m mypy

test:
	$(PYTHON) -m pytest -q

check: lint typecheck test
