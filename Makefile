# `make check` is exactly what CI runs after installing (see .ci/run).
PYTHON ?= python3

.PHONY: check lint typecheck test install torture

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

# A long soak of whole-agent fault runs (docs/testing.md); not part of `check`.
TORTURE_SEEDS ?= 1..200
TORTURE_DURATION ?= 300
torture:
	$(PYTHON) -m gossip torture --seeds $(TORTURE_SEEDS) --duration $(TORTURE_DURATION) \
		--out torture-failures
