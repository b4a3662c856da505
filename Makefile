# binderflow: `make run` starts everything on this machine; `make test` runs the tests.
# Needs only Python 3.11+, pip, git and make (make test also uses node/npm and Chromium; .ci/run installs them).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
WHEELHOUSE := .cache/wheelhouse

.PHONY: run test install install-test wheelhouse node-client bench clean

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

test: install-test wheelhouse node-client
	$(PY) -m pytest

bench: install-test wheelhouse
	$(PY) -m bench

clean:
	rm -rf $(VENV) .cache .pytest_cache
