# Two commands: `make demo` and `make test`. Both set everything up first, idempotently:
# the Debian packages, the virtual environment and the pinned wheels are installed only
# when missing or when requirements.txt / setup.py / package.xml changed.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test lint typecheck pytest demo bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt setup.py package.xml scripts/install_system_deps.sh
	@scripts/install_system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest

test: lint typecheck pytest

demo: setup
	$(VENV)/bin/fusion demo

bench: setup
	$(VENV)/bin/fusion bench convert

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache *.egg-info
