# The commands the README shows. `make run` and `make test` install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LAUNCHER := graph/server/target/.built
LAUNCHER_SOURCES := graph/server/pom.xml $(shell find graph/server/src -type f 2>/dev/null)
# The embedded vector engine's binding, built once from ../shared/qdrant by deploy/qdrant-edge (no registry
# has it) and kept outside the clone, keyed by the build's own files: a fresh clone reuses it.
EDGE_SOURCES := $(sort $(wildcard deploy/qdrant-edge/*))
EDGE_WHEELS := $(HOME)/.cache/pageforge/qdrant-edge/wheels-$(shell cat $(EDGE_SOURCES) | sha256sum | cut -c1-16)

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Python caches compiled modules (.pyc) in .venv and __pycache__/: without them every process compiles
# torch and sentence-transformers again (25 s instead of 10 s here), so a setting that turns them off goes.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install tools system-packages run test check lint fmt clean bench

install: $(INSTALLED) $(LAUNCHER)

$(INSTALLED): requirements.lock requirements-bootstrap.lock pyproject.toml $(EDGE_SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-bootstrap.lock
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes requirements.lock
	test -f $(EDGE_WHEELS)/SHA256SUMS || deploy/qdrant-edge/build-wheel.sh $(BIN)/maturin $(EDGE_WHEELS)
	cd $(EDGE_WHEELS) && sha256sum --check --quiet SHA256SUMS
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps $(EDGE_WHEELS)/qdrant_edge_py-*.whl
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

# Neo4j 5.26 from Maven Central and the small Java launcher that opens it with Bolt on 127.0.0.1.
$(LAUNCHER): $(INSTALLED) $(LAUNCHER_SOURCES)
	$(BIN)/pageforge neo4j build
	touch $@

# What the HTML-validity tests and PDF renders run beside Python: Java for the Nu HTML Checker (vnu-jar),
# Debian's chromium for axe-core (driven by playwright-core, which never downloads a browser), Pango and
# HarfBuzz's subsetter for WeasyPrint (without the subsetter it warns on every PDF). System packages come from apt (CI runs as root) only when missing; npm packages from the
# lock into node_modules, with no install scripts (vnu-jar's would try to download a Java).
NODE_TOOLS := node_modules/.installed

tools: $(NODE_TOOLS) system-packages

$(NODE_TOOLS): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

system-packages:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	ldconfig -p | grep -q libpango-1.0.so.0 || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	fc-list 2>/dev/null | grep -qi dejavu || missing="$$missing fonts-dejavu-core"; \
	ldconfig -p | grep -q libharfbuzz-subset.so.0 || missing="$$missing libharfbuzz-subset0"; \
	if [ -n "$$missing" ]; then \
	  echo "installing from Debian:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: install
	$(BIN)/pageforge neo4j start
	@echo "API key for tenant 'default' (a new one each run; earlier keys stay valid):"
	@$(BIN)/pageforge tenant key default --create
	$(BIN)/pageforge serve

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	node --check app/explorer/static/explorer.js
	node --check tests/e2e/explorer_driver.js
	node --check tests/e2e/explorer_large.js
	node --check tests/e2e/explorer_oidc.js

# The whole suite on two workers (each with its own Neo4j; a test module stays on one worker), with branch
# coverage of the packages (report printed, and as HTML in var/coverage/index.html).
test: install tools lint
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder --cov --cov-report=term --cov-report=html

# Day to day: lint and the unit tests (pure code, no services), in a minute or two.
check: install lint
	$(BIN)/pytest -n 2 tests/unit

fmt: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache graph/server/target
