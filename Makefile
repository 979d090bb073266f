# jupyter-mlplat: `make up` starts the embedded platform, `make test` runs the suite.
# Both create .venv and install everything they need on a fresh machine.

# The hub, run as root, starts each user's server as that user's own OS account: the venv's
# interpreter must be one other accounts can run (Debian's, not one under /root/.pyenv).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.mlplat-installed
CHP := node_modules/.bin/configurable-http-proxy
# MLServer runs from a venv of its own beside the project's (jupyter_mlplat.serving.environment
# looks for it at <project venv>-serving by default).
SERVING_VENV ?= $(VENV)-serving
SERVING_STAMP := $(SERVING_VENV)/.mlplat-serving-installed
PYTEST_ARGS ?=
# The side panel (labextension/, TypeScript): built into jupyter_mlplat/labextension, which
# the wheel ships; `pip install .` builds it too (hatch-jupyter-builder).
LABEXT := jupyter_mlplat/labextension/static/style.js
LABEXT_SOURCES := $(shell find labextension/src labextension/style -type f 2>/dev/null) \
	labextension/package.json labextension/package-lock.json labextension/tsconfig.json
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: up demo test install serving-env labextension lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install --quiet uv

$(STAMP): pyproject.toml | $(UV)
	$(UV) pip install --python $(PY) --quiet --compile-bytecode -e ".[test]"
	touch $(STAMP)

# configurable-http-proxy comes from the npm registry into this project, not globally.
$(CHP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(CHP)

# Rebuilt when the project venv is, since its mlflow/scikit-learn versions are the pins.
$(SERVING_STAMP): $(STAMP) scripts/build-serving-env.sh
	bash scripts/build-serving-env.sh $(PY) $(UV) $(PYTHON) $(SERVING_VENV)
	touch $(SERVING_STAMP)

serving-env: $(SERVING_STAMP)

# Rebuilt when its sources change (the editable install built it once); the venv's share/
# links to the build, so Lab serves what was built last.
$(LABEXT): $(LABEXT_SOURCES) | $(STAMP)
	cd labextension && npm ci --no-audit --no-fund --loglevel=error
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm run build:prod
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jupyter labextension develop --overwrite . >/dev/null
	touch $(LABEXT)

labextension: $(LABEXT)

install: $(STAMP) $(CHP) $(SERVING_STAMP) $(LABEXT)

# configurable-http-proxy is found on PATH (or c.MlplatHub.proxy_command).
up: install
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(VENV)/bin/mlplat up

# The whole walk-through, headless (scripts/demo.py): a fresh platform in a temporary
# home on free ports; alice trains, registers and requests production, rita approves, alice
# deploys with a canary, predicts, promotes and schedules the report, rita verifies the audit
# log; a summary with links and timings, then everything is removed. Exit 1 if a step fails.
# DEMO_ARGS="--keep" leaves it up until Ctrl-C; "--fail-at approve" shows a failing step.
demo: install
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(PY) scripts/demo.py $(DEMO_ARGS)

# The store tests run on a real PostgreSQL too, the panel's on Debian's Chromium: both
# installed from Debian's packages if missing. The panel's TypeScript tests run with jest.
test: install lint
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	cd labextension && npx jest --silent
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check jupyter_mlplat tests benchmarks scripts
	$(VENV)/bin/ruff format --check jupyter_mlplat tests benchmarks scripts

format: install
	$(VENV)/bin/ruff check --fix jupyter_mlplat tests benchmarks scripts
	$(VENV)/bin/ruff format jupyter_mlplat tests benchmarks scripts

bench: install
	$(PY) benchmarks/bench_foundation.py
	$(PY) benchmarks/bench_core.py

clean:
	rm -rf $(VENV) $(SERVING_VENV) .pytest_cache .ruff_cache labextension/node_modules \
		labextension/lib jupyter_mlplat/labextension
