# binderflow: `make run` starts everything on this machine; `make test` runs the tests.
# `make run` needs only Python 3.11+, pip, git and make. `make test` also needs
# node/npm (the binderhub-client test) and Debian's Chromium (the web UI tests);
# .ci/run installs both. `make test-fast` (the edit loop) needs neither.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
WHEELHOUSE := .cache/wheelhouse

.PHONY: run test test-fast typecheck install install-test wheelhouse node-client bench clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(UV) pip install --quiet --python $(PY) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(UV) pip install --quiet --python $(PY) -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Wheels the tests serve from a package index on 127.0.0.1, so no test reaches
# the internet: JupyterLab and its dependencies, plus the small packages the test
# repositories ask for.
$(WHEELHOUSE)/.complete: tests/wheelhouse.txt $(VENV)/.created
	mkdir -p $(WHEELHOUSE)
	$(VENV)/bin/pip download --quiet --disable-pip-version-check --only-binary=:all: --dest $(WHEELHOUSE) -r tests/wheelhouse.txt
	touch $@

wheelhouse: $(WHEELHOUSE)/.complete

# The real @jupyterhub/binderhub-client from npm, for tests/test_binderhub_client.py.
tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	npm ci --prefix tests/node --no-audit --no-fund --silent
	touch $@

node-client: tests/node/node_modules/.installed

run: install
	$(VENV)/bin/binderflow up

# The whole suite, as CI runs it: type checking, then every test.
test: install-test wheelhouse node-client typecheck
	$(PY) -m pytest

# The edit loop (under a minute): everything that starts no processes.
test-fast: install-test
	$(PY) -m pytest -m "not slow"

typecheck: install-test
	$(PY) -m mypy

bench: install-test wheelhouse
	$(PY) -m bench

clean:
	rm -rf $(VENV) .cache .pytest_cache
